"""Layer by layer: step through one forward pass, module by module.

Two ways to get a ``Walk`` (``llminspect.analysis.steps``):
- ``how="hooks"``: forward hooks on the model's own modules record what each one returned during
  one ordinary forward pass. It works for any standard transformers architecture (the blocks are
  found as the model's ``ModuleList``s), offloaded models included. Residual adds are written
  inside each block's ``forward`` and have no module, so here a block's output (the residual
  stream after it) stands for them.
- ``how="by hand"``: ``llminspect.analysis.by_hand`` re-does the forward pass in Python, each
  sub-module called with the masks and positions the model would use, residual adds written out,
  and proves it ends where the model ends.

Example:
    >>> import llminspect as li
    >>> steps = li.load("decoder").walk("The quick brown fox")
    >>> [step.name for step in steps][:3]
    ['embed_tokens', 'rotary_emb', 'input to the blocks']
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llminspect.analysis.by_hand import walk_by_hand
from llminspect.analysis.hooks import hooked
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.steps import Step, Walk, batchless, model_output
from llminspect.errors import InputError
from llminspect.models.structure import block_lists, has_state, head_prefix, kind_of


def walk(m, inputs: Inputs, how: str = "hooks") -> Walk:
    """Step through one forward pass of ``m`` on ``inputs``: a ``Walk`` of ``Step``s in execution order."""
    if how not in ("hooks", "by hand"):
        raise InputError(f"how={how!r}: use 'hooks' or 'by hand'.")
    if how == "by hand":
        steps, logits = walk_by_hand(m.model, inputs.tensors)
    else:
        outputs = {}

        def run():
            with torch.no_grad():
                outputs["out"] = m.model(**inputs.tensors, use_cache=False)
            return outputs["out"]

        steps = walk_with_hooks(m.model, run)
        logits = batchless(getattr(outputs["out"], "logits", None))
    return Walk(m.family, how, inputs.tokens, steps, logits, inputs.source)


def _shapes(args: tuple, kwargs: dict) -> list[tuple[int, ...]]:
    values = list(args) + list(kwargs.values())
    return [tuple(v.shape) for v in values if isinstance(v, torch.Tensor)]


def walk_with_hooks(model, run: Callable[[], object]) -> list[Step]:
    """Record every block, every block's direct parts and every other leaf module while ``run()`` runs.

    Parameter-free modules (dropout, activations) are skipped; a rotary embedding (buffers only)
    is kept. Outside the blocks, a module made of parts (BERT's pooler: dense, then tanh) is
    recorded too when its output is not simply its last part's. A module used under two names
    (BART's shared embedding) is named after the stack that calls it. The walk ends on what
    ``run()`` returns (the model's output): when the forward pass does more after its last
    module (Gemma 2's final soft-capping), that is one more step.
    """
    recorder = _HookedWalk(model)
    with hooked(recorder.attach()):
        output = run()
    steps = recorder.steps
    final = model_output(output) if output is not None else None
    if final is not None and steps and not _same(steps[-1].output, final):
        capping = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
        label = "final logit soft-capping" if capping else "model output"
        steps.append(Step(label, "head", "", final, [steps[-1].output_shape]))
    return steps


class _HookedWalk:
    """The hooks of one hooked walk and the steps they record."""

    def __init__(self, model) -> None:
        self.model, self.stacks = model, block_lists(model)
        # An encoder-decoder has two stacks; their parents ("model.encoder") name the steps inside.
        self.parents = {}
        if len(self.stacks) > 1:
            self.parents = {path.rsplit(".", 1)[0]: path.rsplit(".", 2)[-2] for path, _ in self.stacks}
        self.aliases: dict[int, list[str]] = {}
        for name, module in model.named_modules(remove_duplicate=False):
            self.aliases.setdefault(id(module), []).append(name)
        self.block_ids = {id(block) for _, blocks in self.stacks for block in blocks}
        self.backbone = head_prefix(model)
        self.active: list[str] = []  # parent paths of the stacks running now
        self.entered = dict.fromkeys((path for path, _ in self.stacks), 0)  # blocks run so far, per stack
        self.steps: list[Step] = []
        self.composites: set[int] = set()

    def recorded_modules(self) -> list:
        """Blocks, their direct parts, the leaves outside them, and composites outside them (e.g. the pooler)."""
        stacks, model = self.stacks, self.model
        inside = {id(m) for _, blocks in stacks for block in blocks for m in block.modules() if m is not block}
        holders = {id(m) for _, blocks in stacks for m in model.modules() if any(b is blocks for b in m.modules())}
        chosen = set()
        for _, blocks in stacks:
            for block in blocks:
                chosen.add(id(block))
                chosen.update(id(child) for child in block.children() if has_state(child))
        for module in model.modules():
            if id(module) in inside or not has_state(module):
                continue
            if next(module.children(), None) is None:
                chosen.add(id(module))
            elif module is not model and id(module) not in holders and id(module) not in self.block_ids:
                chosen.add(id(module))
                self.composites.add(id(module))
        return [module for module in model.modules() if id(module) in chosen]  # each once, whatever its names

    def attach(self) -> list:
        """Register every hook; return the handles."""
        handles = []
        for parent in self.parents:
            module = self.model.get_submodule(parent)
            handles.append(module.register_forward_pre_hook(lambda m, a, p=parent: self.active.append(p) and None))
            handles.append(module.register_forward_hook(lambda m, a, out: self.active.pop() and None))
        for path, blocks in self.stacks:
            handles.extend(block.register_forward_pre_hook(self._counter(path)) for block in dict.fromkeys(blocks))
            handles.append(blocks[0].register_forward_pre_hook(self._stream_start, with_kwargs=True))
        modules = self.recorded_modules()
        handles.extend(module.register_forward_hook(self._record, with_kwargs=True) for module in modules)
        return handles

    def _counter(self, path: str):
        def count(module, args) -> None:
            self.entered[path] += 1

        return count

    def _stack_of(self, path: str) -> str | None:
        parent = next((p for p in self.parents if path.startswith(p + ".")), None)
        return self.parents.get(parent) if parent else None

    def _stream_start(self, module, args, kwargs) -> None:
        """The stream as it enters the first block (once: a shared block running again is already inside)."""
        if any(self.entered[path] > 1 for path, blocks in self.stacks if any(b is module for b in blocks)):
            return
        value = batchless(args[0] if args else kwargs.get("hidden_states"))
        stack = self._stack_of(self.aliases[id(module)][0])
        name = f"{stack} input to the blocks" if stack else "input to the blocks"
        self.steps.append(Step(name, "residual", "", value, [tuple(value.shape)], None, stack, stream=True))

    def _record(self, module, args, kwargs, output) -> None:
        value = batchless(output)
        if value is None:
            return
        if id(module) in self.composites and self.steps and _same(self.steps[-1].output, value):
            return  # e.g. BERT's embeddings module: its output is its LayerNorm's, already recorded
        names = self.aliases[id(module)]
        path = next((n for n in names if self.active and n.startswith(self.active[-1] + ".")), names[0])
        stack = self._stack_of(path)
        blocks = next((b for b, _ in self.stacks if path.startswith(b + ".")), None)
        layer = self.entered[blocks] - 1 if blocks else None  # counted as run: ALBERT runs one block 12 times
        if id(module) in self.block_ids:
            kind = "block"
        elif self.backbone is not None and not path.startswith(self.backbone):
            kind = "head"  # outside the backbone: lm_head, BERT's cls.predictions.*
        else:
            kind = kind_of(path)  # the whole path: "pooler.dense" is the pooler, not an MLP
        label = "output (residual stream)" if kind == "block" else path.rsplit(".", 1)[-1]
        name = f"layer {layer} · {label}" if layer is not None else label
        name = f"{stack} {name}" if stack else name
        self.steps.append(Step(name, kind, path, value, _shapes(args, kwargs), layer, stack, stream=kind == "block"))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)
