"""Attention masks: which keys each query may see, as booleans for pictures and as the additive form eager
attention adds to its scores.

- causal: query i sees keys j <= i (a decoder cannot read ahead);
- sliding window of w: only i - w < j <= i, w keys, itself included — the convention of
  transformers' Mistral mask (a test compares it with the mask Mistral applies); textbooks often
  write i - w <= j <= i, which is w + 1 keys;
- padding: in a right-padded batch, no query looks at the padding.

Example:
    >>> sliding_window_mask(4, 2).int().tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    >>> additive(causal_mask(2), torch.float32)[0, 0].eq(0).tolist()
    [[True, False], [True, True]]
"""

from __future__ import annotations

import torch

from llminspect.errors import InputError


def causal_mask(n: int) -> torch.Tensor:
    """[n, n] booleans: query i may attend to key j when j <= i."""
    return torch.ones(n, n, dtype=torch.bool).tril()


def sliding_window_mask(n: int, window: int) -> torch.Tensor:
    """[n, n] booleans for causal attention within a window of ``window`` keys, itself included."""
    if window < 1:
        raise InputError(f"window={window}: a sliding window holds at least one position (the token itself).")
    rows = torch.arange(n)[:, None]
    cols = torch.arange(n)[None, :]
    return (cols <= rows) & (cols > rows - window)


def padding_mask(lengths: list[int]) -> torch.Tensor:
    """[batch, n] booleans for a right-padded batch: True on real tokens, False on padding."""
    n = max(lengths)
    return torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]


def additive(allowed: torch.Tensor, dtype: torch.dtype, device=None) -> torch.Tensor:
    """The [1, 1, n, n] mask eager attention adds to its scores: 0 where allowed, the dtype's lowest value elsewhere."""
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return mask.masked_fill(~allowed.to(device), torch.finfo(dtype).min)[None, None]
