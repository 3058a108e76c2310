"""Debounce: run a callback once typing pauses, not on every keystroke.

Inside Jupyter the kernel runs an asyncio loop, so the call is scheduled on it and each new
call cancels the one waiting. Without a running loop (plain Python, tests) it runs at once.

Example:
    >>> seen = []
    >>> debounced(0.1, seen.append)("now")
    >>> seen
    ['now']
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def debounced(wait: float, function: Callable[..., None]) -> Callable[..., None]:
    """Wrap ``function`` so only the last of several quick calls runs, ``wait`` seconds later."""
    pending: list[asyncio.TimerHandle] = []

    def call(*args) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            function(*args)
            return
        while pending:
            pending.pop().cancel()
        pending.append(loop.call_later(wait, function, *args))

    return call
