"""Forward hooks that last exactly as long as a ``with`` block.

Example:
    >>> import torch
    >>> layer, seen = torch.nn.Linear(2, 2), []
    >>> with hooked([layer.register_forward_hook(lambda module, args, out: seen.append(out.shape))]):
    ...     _ = layer(torch.ones(1, 2))
    >>> _ = layer(torch.ones(1, 2))
    >>> seen
    [torch.Size([1, 2])]
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def hooked(handles: list):
    """Keep the hooks ``handles`` for the ``with`` block, and remove them however it ends."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
