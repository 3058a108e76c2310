"""One CPU thread for work made of many tiny tensor operations (training a toy, decoding a token at a time).

On a 2-core machine shared with other work, torch's second thread mostly waits for the first at every
small operation: a 2,000-step toy training measured 0.5 s on one thread and 4-18 s on two beside busy
neighbours. Large batched forward passes keep torch's own setting.

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with one_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def one_thread():
    """Torch on one thread for the ``with`` block (the setting before it comes back however it ends)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
