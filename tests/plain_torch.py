"""References written in plain torch around a model's own modules, shared by the intervention tests."""

from __future__ import annotations

import torch


class PatchedBlock(torch.nn.Module):
    """A block whose output at one position is replaced by ``vector``: the real block, then plain indexing."""

    def __init__(self, block, position: int, vector: torch.Tensor):
        super().__init__()
        self.block, self.position, self.vector = block, position, vector

    def forward(self, *args, **kwargs):
        out = self.block(*args, **kwargs)
        hidden = (out[0] if isinstance(out, tuple) else out).clone()
        hidden[:, self.position] = self.vector
        return (hidden, *out[1:]) if isinstance(out, tuple) else hidden
