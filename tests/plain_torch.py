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


class AddedBlock(torch.nn.Module):
    """A block whose input gets ``vector`` [tokens, hidden] added from ``start`` on: plain indexing, then the real
    block (a steering vector, as ActAdd adds it)."""

    def __init__(self, block, start: int, vector: torch.Tensor):
        super().__init__()
        self.block, self.start, self.vector = block, start, vector

    def forward(self, *args, **kwargs):
        hidden = (args[0] if args else kwargs["hidden_states"]).clone()
        hidden[:, self.start : self.start + self.vector.shape[0]] += self.vector.to(hidden.dtype)
        if args:
            return self.block(hidden, *args[1:], **kwargs)
        return self.block(**{**kwargs, "hidden_states": hidden})
