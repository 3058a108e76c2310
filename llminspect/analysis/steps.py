"""A walk as data: the steps one forward pass took, in the order it took them.

A ``Walk`` is a list of ``Step``s — embeddings, positions, each block's norm, attention,
residual add and MLP, the final norm, the head — each with the module that ran, its input and
output shapes, and its output. ``llminspect.analysis.walk`` records one with hooks or by hand.

Example:
    >>> import torch
    >>> step = Step("embed_tokens", "embedding", "model.embed_tokens", torch.ones(2, 3))
    >>> walk = Walk("decoder", "hooks", None, [step])
    >>> walk["embed_tokens"].output_shape, final_hidden_state(walk.steps).shape
    ((2, 3), torch.Size([2, 3]))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


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


def model_output(output) -> torch.Tensor | None:
    """What a model's forward pass finally hands back: logits, else the pooled vector, else the last hidden state.

    Batch dimension removed, float32 on the CPU.
    """
    for name in ("logits", "pooler_output", "last_hidden_state"):
        value = getattr(output, name, None)
        if isinstance(value, torch.Tensor):
            return batchless(value)
    return batchless(output)
