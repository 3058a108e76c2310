"""Layer by layer: the steps a forward pass takes, in the order it takes them.

A ``Walk`` is a list of ``Step``s — embeddings, positions, each block's norm, attention,
residual add and MLP, the final norm, the language-model head — each with the module that ran,
its input and output shapes, and its output. Two ways to get one:

- ``walk_with_hooks``: forward hooks on the model's own modules record what each one returned
  during one ordinary forward pass. It works for any standard transformers architecture (the
  blocks are found as the model's ``ModuleList``s), offloaded models included. Residual adds are
  written inside each block's ``forward`` and have no module, so here a block's output (the
  residual stream after it) stands for them.
- ``llminspect.analysis.by_hand.walk_by_hand``: the embedded families' forward pass re-done in Python,
  calling each sub-module ourselves with the masks and position embeddings the model would use,
  the residual adds written out. The tests prove it ends on the same hidden state and logits.

Example:
    >>> import llminspect as li
    >>> steps = li.load("decoder").walk("The quick brown fox")
    >>> [step.name for step in steps][:3]
    ['embed_tokens', 'rotary_emb', 'input to the blocks']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from llminspect.errors import LLMInspectError

# What a module does, guessed from its attribute name (first match wins). Labels for people:
# the walk itself never depends on them.
_KINDS = (
    ("rotary", "positions"),
    ("position", "positions"),
    ("wpe", "positions"),
    ("embed", "embedding"),
    ("wte", "embedding"),
    ("shared", "embedding"),
    ("conv", "embedding"),
    ("encoder_attn", "cross-attention"),
    ("crossattention", "cross-attention"),
    ("attn", "attention"),
    ("attention", "attention"),
    ("norm", "norm"),
    ("ln", "norm"),
    ("lm_head", "head"),
    ("proj_out", "head"),
    ("pooler", "head"),
    ("mlp", "mlp"),
    ("fc", "mlp"),
    ("intermediate", "mlp"),
    ("output", "mlp"),
    ("feed_forward", "mlp"),
    ("ffn", "mlp"),
    ("dense", "mlp"),
)


def kind_of(attribute: str) -> str:
    """What a module named ``attribute`` does: embedding, positions, attention, norm, mlp, head...

    Example:
        >>> kind_of("post_attention_layernorm"), kind_of("encoder_attn"), kind_of("rotary_emb")
        ('norm', 'cross-attention', 'positions')
    """
    lowered = attribute.lower()
    if lowered.endswith(("layernorm", "layer_norm", "norm")):
        return "norm"
    return next((kind for key, kind in _KINDS if key in lowered), "other")


@dataclass
class Step:
    """One thing the forward pass did: which module, on what shapes, with what result."""

    name: str  # readable: "layer 3 · self_attn", "decoder layer 0 · residual add (attention)"
    kind: str  # embedding, positions, norm, attention, cross-attention, mlp, residual, block, head
    module: str  # the module's path in the model ("model.layers.3.self_attn"); "" for a plain add
    output: torch.Tensor  # batch dimension removed, float32 on the CPU
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    layer: int | None = None
    stack: str | None = None  # "encoder" or "decoder" in an encoder-decoder
    added: torch.Tensor | None = None  # for a residual add: what the sub-layer added to the stream
    stream: bool = False  # True when ``output`` is the residual stream carried to the next step

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.output.shape)

    def __repr__(self) -> str:
        inputs = ", ".join(str(list(shape)) for shape in self.input_shapes)
        return f"Step({self.name!r}, {self.kind}, ({inputs}) -> {list(self.output_shape)})"


@dataclass
class Walk:
    """The steps of one forward pass, in execution order; iterate, index by position or name."""

    family: str
    how: str  # "hooks" or "by hand"
    tokens: object  # Tokens the (decoder) stack read
    steps: list[Step]
    logits: torch.Tensor | None = None  # [tokens, vocab] from the head, when the model has one
    source: object = None  # encoder-decoders: the source Tokens or Audio

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, key: int | str) -> Step:
        if isinstance(key, str):
            for step in self.steps:
                if step.name == key:
                    return step
            raise KeyError(f"No step named {key!r}; the names are in [step.name for step in walk].")
        return self.steps[key]

    def find(self, kind: str | None = None, layer: int | None = None, stack: str | None = None) -> list[Step]:
        """The steps of one kind, layer and/or stack, in order."""
        return [
            s
            for s in self.steps
            if (kind is None or s.kind == kind) and (layer is None or s.layer == layer) and (stack in (None, s.stack))
        ]

    @property
    def final_hidden_state(self) -> torch.Tensor:
        """The (decoder) stack's last output before the head: [tokens, hidden]."""
        return final_hidden_state(self.steps)


def final_hidden_state(steps: list[Step]) -> torch.Tensor:
    """The last output of the (decoder) stack before the head (pooler, LM head) among ``steps``."""
    before_head = [s for s in steps if s.kind not in ("head", "other") and s.stack in (None, "decoder")]
    return before_head[-1].output


def batchless(value) -> torch.Tensor | None:
    """The first tensor in a module's output, batch dimension dropped, as float32 on the CPU."""
    if isinstance(value, (tuple, list)):
        value = next((v for v in value if isinstance(v, torch.Tensor)), None)
    elif not isinstance(value, torch.Tensor):
        value = getattr(value, "last_hidden_state", None)
    if not isinstance(value, torch.Tensor):
        return None
    if value.dim() >= 2 and value.shape[0] == 1:
        value = value[0]
    return value.detach().float().cpu()


def block_lists(model) -> list[tuple[str, torch.nn.ModuleList]]:
    """The model's stacks of transformer blocks: each ``ModuleList`` of repeated modules, outermost first.

    Example:
        >>> import llminspect as li
        >>> [name for name, _ in block_lists(li.load("toy-seq2seq").model)]
        ['model.encoder.layers', 'model.decoder.layers']
    """
    found = []
    for name, module in model.named_modules():
        nested = any(name.startswith(outer + ".") for outer, _ in found)
        if isinstance(module, torch.nn.ModuleList) and len(module) and not nested:
            if len({type(child) for child in module}) == 1 and any(p.numel() for p in module.parameters()):
                found.append((name, module))
    if not found:
        raise LLMInspectError(f"{type(model).__name__} has no list of transformer blocks that llminspect can find.")
    return found


def _shapes(args: tuple, kwargs: dict) -> list[tuple[int, ...]]:
    values = list(args) + list(kwargs.values())
    return [tuple(v.shape) for v in values if isinstance(v, torch.Tensor)]


def model_output(output) -> torch.Tensor | None:
    """What a model's forward pass finally hands back: logits, else the pooled vector, else the last hidden state.

    Batch dimension removed, float32 on the CPU.
    """
    for name in ("logits", "pooler_output", "last_hidden_state"):
        value = getattr(output, name, None)
        if isinstance(value, torch.Tensor):
            return batchless(value)
    return batchless(output)


def head_prefix(model) -> str | None:
    """The path prefix of the backbone inside a model with a head ("model.", "bert."), or None for a bare model.

    Everything outside the backbone (``lm_head``, BERT's ``cls`` masked-LM head) is the model's head.
    """
    base = getattr(model, "base_model", model)
    if base is model:
        return None
    return next((f"{name}." for name, module in model.named_children() if module is base), None)


def walk_with_hooks(model, run: Callable[[], object]) -> list[Step]:
    """Record every block, every block's direct parts and every other leaf module while ``run()`` runs.

    Parameter-free modules (dropout, activations) are skipped; a rotary embedding (buffers only)
    is kept. Outside the blocks, a module made of parts (BERT's pooler: dense, then tanh) is
    recorded too when its output is not simply its last part's. A module used under two names
    (BART's shared embedding) is named after the stack that calls it. The walk ends on what
    ``run()`` returns (the model's output): when the forward pass does more after its last
    module (Gemma 2's final soft-capping), that is one more step.
    """
    stacks = block_lists(model)
    # An encoder-decoder has two stacks; their parents ("model.encoder") name the steps inside.
    parents = {}
    if len(stacks) > 1:
        parents = {path.rsplit(".", 1)[0]: path.rsplit(".", 2)[-2] for path, _ in stacks}
    aliases: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        aliases.setdefault(id(module), []).append(name)
    block_ids = {id(block) for _, blocks in stacks for block in blocks}
    inside = {id(m) for _, blocks in stacks for block in blocks for m in block.modules() if m is not block}
    backbone = head_prefix(model)
    active: list[str] = []  # parent paths of the stacks running now
    steps: list[Step] = []
    composites: set[int] = set()

    def record(module, args, kwargs, output) -> None:
        value = batchless(output)
        if value is None:
            return
        if id(module) in composites and steps and _same(steps[-1].output, value):
            return  # e.g. BERT's embeddings module: its output is its LayerNorm's, already recorded
        names = aliases[id(module)]
        path = next((n for n in names if active and n.startswith(active[-1] + ".")), names[0])
        parent = next((p for p in parents if path.startswith(p + ".")), None)
        stack = parents.get(parent) if parent else None
        blocks = next((b for b, _ in stacks if path.startswith(b + ".")), None)
        layer = entered[blocks] - 1 if blocks else None  # counted as run: ALBERT runs one shared block 12 times
        # Outside the blocks the parent's name helps: "pooler.dense" is the pooler, not an MLP.
        own_name = ".".join(path.split(".")[-1 if layer is not None else -2 :])
        if id(module) in block_ids:
            kind = "block"
        elif backbone is not None and not path.startswith(backbone):
            kind = "head"  # outside the backbone: lm_head, BERT's cls.predictions.*
        else:
            kind = kind_of(own_name)
        label = "output (residual stream)" if kind == "block" else path.rsplit(".", 1)[-1]
        name = f"layer {layer} · {label}" if layer is not None else label
        name = f"{stack} {name}" if stack else name
        steps.append(Step(name, kind, path, value, _shapes(args, kwargs), layer, stack, stream=kind == "block"))

    def leave(module, args, output) -> None:  # a forward hook that returned a value would replace the output
        active.pop()

    handles = []
    for parent in parents:
        module = model.get_submodule(parent)
        handles.append(module.register_forward_pre_hook(lambda m, a, parent=parent: active.append(parent) and None))
        handles.append(module.register_forward_hook(leave))

    entered = dict.fromkeys((path for path, _ in stacks), 0)  # blocks run so far, per stack

    def enter(path: str):
        def count(module, args) -> None:
            entered[path] += 1

        return count

    for path, blocks in stacks:
        handles.extend(block.register_forward_pre_hook(enter(path)) for block in dict.fromkeys(blocks))

    def stream_start(module, args, kwargs) -> None:  # the stream as it enters the first block
        if any(entered[path] > 1 for path, blocks in stacks if any(b is module for b in blocks)):
            return  # a shared block running again: the stream is already inside the stack
        value = batchless(args[0] if args else kwargs.get("hidden_states"))
        stack = next((parents[p] for p in parents if aliases[id(module)][0].startswith(p + ".")), None)
        name = f"{stack} input to the blocks" if stack else "input to the blocks"
        steps.append(Step(name, "residual", "", value, [tuple(value.shape)], None, stack, stream=True))

    for _, blocks in stacks:
        handles.append(blocks[0].register_forward_pre_hook(stream_start, with_kwargs=True))
    chosen = set()
    for _, blocks in stacks:
        for block in blocks:
            chosen.add(id(block))
            chosen.update(id(child) for child in block.children() if _has_state(child))
    holders = {id(m) for _, blocks in stacks for m in model.modules() if any(b is blocks for b in m.modules())}
    for module in model.modules():
        if id(module) in inside or not _has_state(module):
            continue
        if next(module.children(), None) is None:
            chosen.add(id(module))
        elif module is not model and id(module) not in holders and id(module) not in block_ids:
            chosen.add(id(module))  # a part made of parts, outside the blocks (pooler, embeddings, heads)
            composites.add(id(module))
    for module in model.modules():  # each module once, however many names it has
        if id(module) in chosen:
            handles.append(module.register_forward_hook(record, with_kwargs=True))
    try:
        output = run()
    finally:
        for handle in handles:
            handle.remove()
    final = model_output(output) if output is not None else None
    if final is not None and steps and not _same(steps[-1].output, final):
        capping = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
        label = "final logit soft-capping" if capping else "model output"
        steps.append(Step(label, "head", "", final, [steps[-1].output_shape]))
    return steps


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


def _has_state(module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


@dataclass
class ResidualStream:
    """How big the residual stream is at each point of a walk, and how much each sub-layer adds.

    ``stream_norm[p, t]`` is the L2 norm of token t's stream after point p; ``added_norm[a, t]``
    the norm of what sub-layer a added to it (before any post-norm LayerNorm rescales the sum).
    """

    tokens: list[str]
    stream_labels: list[str]
    stream_norm: torch.Tensor  # [points, tokens]
    added_labels: list[str]
    added_norm: torch.Tensor  # [sub-layers, tokens]


def residual_stream(walk: Walk, stack: str | None = None) -> ResidualStream:
    """The residual stream's size along one stack of a walk (an encoder-decoder's decoder by default).

    A by-hand walk knows each add; a hooked walk only sees block outputs, so there what a block
    added is the difference between its output and its input (attention and MLP together).

    Example:
        >>> import llminspect as li
        >>> stream = residual_stream(li.load("decoder").walk("The quick brown fox", how="by hand"))
        >>> stream.added_labels[:2], tuple(stream.added_norm.shape)
        (['layer 0 · attention', 'layer 0 · MLP'], (60, 4))
    """
    if stack is None and walk.family == "encoder-decoder":
        stack = "decoder"
    steps = [s for s in walk.steps if s.stack == stack]
    points = [s for s in steps if s.stream]
    if not points:
        raise LLMInspectError(f"This walk has no residual-stream steps for stack {stack!r}.")
    adds = [s for s in steps if s.added is not None]
    if adds:
        added_labels = [f"layer {s.layer} · {s.name.split('(')[-1].rstrip(')')}" for s in adds]
        added = torch.stack([s.added.norm(dim=-1) for s in adds])
    else:
        added_labels = [f"layer {s.layer} · whole block" for s in points[1:]]
        added = torch.stack([(b.output - a.output).norm(dim=-1) for a, b in zip(points, points[1:], strict=False)])
    labels = ["embeddings" if s.layer is None else s.name.removeprefix(f"{stack} " if stack else "") for s in points]
    source = walk.source if stack == "encoder" else walk.tokens
    tokens = list(getattr(source, "labels", None) or [f"{i}" for i in range(points[0].output.shape[0])])
    return ResidualStream(tokens, labels, torch.stack([s.output.norm(dim=-1) for s in points]), added_labels, added)


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
        kind = "block" if name.isdigit() else kind_of(name)
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
