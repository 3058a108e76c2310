"""Attention maps of a long trace, kept compact: float16, and only the lower triangle where attention is causal.

A decoder's 1,024-token trace holds 30 layers x 9 heads x 1,024 x 1,024 weights: 1.1 GB in
float32. ``AttentionMaps`` keeps them in float16 (about 3 significant digits: relative error below
0.05 %, absolute below 1e-4 for weights under 0.2) and, for causal maps, only the ~half under the
diagonal: 283 MB. Reading it gives float32 again: one layer (``maps[layer]``), one head
(``maps[layer, head]``), or everything (``maps.dense()``, which costs the full size). Short traces
keep plain float32 tensors; ``compact`` decides.

Example:
    >>> import torch
    >>> weights = torch.softmax(torch.randn(2, 3, 4, 4) + torch.triu(torch.full((4, 4), -1e9), 1), -1)
    >>> maps = AttentionMaps(list(weights))
    >>> maps.shape, maps.causal, torch.allclose(maps[1, 2], weights[1, 2], atol=1e-3)
    (torch.Size([2, 3, 4, 4]), True, True)
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

COMPACT_ABOVE = 256 * 2**20  # float32 bytes above which a trace keeps its attentions compact


class AttentionMaps:
    """[layers, heads, queries, keys] attention weights stored in float16 (causal: lower triangle only)."""

    def __init__(self, layers: list[torch.Tensor]) -> None:
        heads, queries, keys = layers[0].shape
        self.shape = torch.Size([len(layers), heads, queries, keys])
        self.causal = queries == keys and all(bool((layer.triu(1) == 0).all()) for layer in layers)
        if self.causal:
            self._index = torch.tril_indices(queries, keys)
            self._layers = [layer[:, self._index[0], self._index[1]].half() for layer in layers]
        else:
            self._layers = [layer.half() for layer in layers]

    @property
    def nbytes(self) -> int:
        """Bytes held (float16 values, plus the triangle's index for causal maps)."""
        held = sum(layer.numel() * layer.element_size() for layer in self._layers)
        return held + (self._index.numel() * self._index.element_size() if self.causal else 0)

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return self.shape[0]

    def layer(self, index: int) -> torch.Tensor:
        """One layer's maps as float32 [heads, queries, keys]."""
        stored = self._layers[index]
        if not self.causal:
            return stored.float()
        full = torch.zeros(self.shape[1:], dtype=torch.float32)
        full[:, self._index[0], self._index[1]] = stored.float()
        return full

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self.layer(index) for index in range(len(self)))

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.layer(key)
        if isinstance(key, tuple) and key and isinstance(key[0], int):
            return self.layer(key[0])[key[1:]]
        return self.dense()[key]

    def dense(self) -> torch.Tensor:
        """Every map as one float32 tensor: the full size (1.1 GB for a 1,024-token decoder trace)."""
        return torch.stack(list(self))

    def float(self) -> torch.Tensor:
        return self.dense()

    def numpy(self):
        return self.dense().numpy()


def compact(layers: list[torch.Tensor]) -> torch.Tensor | AttentionMaps:
    """A float32 tensor [layers, ...] when small, ``AttentionMaps`` when it would pass ``COMPACT_ABOVE`` bytes."""
    size = sum(layer.numel() for layer in layers) * 4
    if size <= COMPACT_ABOVE:
        return torch.stack(layers).float()
    return AttentionMaps(layers)
