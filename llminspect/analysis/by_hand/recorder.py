"""What every by-hand recipe shares: a recorder of steps (residual adds written out), the decoder's mask.

Example:
    >>> step = Recorder()
    >>> total = step.add(torch.ones(1, 2, 3), torch.ones(1, 2, 3), "attention")
    >>> step.steps[0].name, float(total.sum())
    ('residual add (attention)', 12.0)
"""

from __future__ import annotations

import torch

from llminspect.analysis.masks import additive, causal_mask, sliding_window_mask
from llminspect.analysis.steps import Step, batchless

HOOKS = "Use how='hooks', which records any architecture's own modules."


def decoder_mask(length: int, dtype: torch.dtype, device, window: int | None = None) -> torch.Tensor:
    """The additive causal mask a decoder's eager attention adds to its scores, within ``window`` keys if given.

    Example:
        >>> decoder_mask(3, torch.float32, "cpu")[0, 0].eq(0).int().tolist()
        [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    allowed = causal_mask(length) if window is None else sliding_window_mask(length, window)
    return additive(allowed, dtype, device)


class Recorder:
    """Collects steps as a recipe runs; ``add`` also records the residual add it names."""

    def __init__(self, stack: str | None = None) -> None:
        self.steps: list[Step] = []
        self.stack = stack
        self.layer: int | None = None

    def __call__(self, label: str, kind: str, module: str, output, *inputs, stream: bool = False, added=None):
        name = f"layer {self.layer} · {label}" if self.layer is not None else label
        name = f"{self.stack} {name}" if self.stack else name
        shapes = [tuple(x.shape) for x in inputs if isinstance(x, torch.Tensor)]
        step = Step(name, kind, module, batchless(output), shapes, self.layer, self.stack, batchless(added), stream)
        self.steps.append(step)
        return output

    def add(self, stream: torch.Tensor, sub_layer: torch.Tensor, what: str, post_norm: bool = False):
        total = stream + sub_layer
        self(f"residual add ({what})", "residual", "", total, stream, sub_layer, stream=not post_norm, added=sub_layer)
        return total


def first(value):
    """A module's main output: some return a tuple (output, attention weights or router logits)."""
    return value[0] if isinstance(value, tuple) else value
