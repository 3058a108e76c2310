"""The model's module tree as data: what ``print(model)`` shows, with sizes, tied weights and output shapes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from llminspect.analysis.steps import Walk
from llminspect.models.structure import kind_of


@dataclass
class ModuleNode:
    """One module of the tree ``print(model)`` shows, with its size and, after a walk, its output shape."""

    name: str
    path: str
    type: str
    kind: str
    parameters: int
    details: str  # the module's own summary, e.g. "in_features=576, out_features=192, bias=False"
    output_shape: tuple[int, ...] | None = None
    children: list[ModuleNode] = field(default_factory=list)
    same_as_first: bool = False  # a repeated block whose parts are those of block 0 (shown collapsed)


def module_tree(model, walk: Walk | None = None) -> ModuleNode:
    """The model's module tree as data; repeated blocks after the first keep only their name and shape.

    Example:
        >>> import llminspect as li
        >>> tree = module_tree(li.load("decoder").model)
        >>> [child.name for child in tree.children], tree.parameters
        (['model', 'lm_head'], 134515008)
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for step in walk or []:
        if step.module:
            shapes.setdefault(step.module, step.output_shape)
    owners: dict[int, str] = {}  # a weight's first holder: a later module holding it is tied to that one
    for path, module in model.named_modules():
        for parameter in module.parameters(recurse=False):
            owners.setdefault(id(parameter), path)

    def details(path: str, module) -> str:
        own = list(module.parameters(recurse=False))
        tied = {owners[id(p)] for p in own} - {path}
        return module.extra_repr() + (f" (weight tied to {', '.join(sorted(tied))})" if own and tied else "")

    def size(module) -> int:
        return sum(p.numel() for p in module.parameters())

    def node(name: str, path: str, module) -> ModuleNode:
        children = list(module.named_children())
        same_type = isinstance(module, torch.nn.ModuleList) and len({type(c) for _, c in children}) == 1
        kind = "block" if name.isdigit() else kind_of(path or name)
        here = ModuleNode(
            name, path, type(module).__name__, kind, size(module), details(path, module), shapes.get(path)
        )
        for index, (child_name, child) in enumerate(children):
            child_path = f"{path}.{child_name}" if path else child_name
            if same_type and index > 0:
                here.children.append(
                    ModuleNode(
                        child_name,
                        child_path,
                        type(child).__name__,
                        "block",
                        size(child),
                        "",
                        shapes.get(child_path),
                        same_as_first=True,
                    )  # fmt: skip
                )
            else:
                here.children.append(node(child_name, child_path, child))
        return here

    return node(type(model).__name__, "", model)
