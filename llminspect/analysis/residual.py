"""The residual stream along a walk: how big it is at each point, and how much each sub-layer adds."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.steps import Walk
from llminspect.errors import LLMInspectError


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
