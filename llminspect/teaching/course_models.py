"""The embedded models the exercises compute their answers with: loaded once per kernel, on the CPU.

A check never waits for a reload: the first exercise that needs the decoder loads it, every later
one (predictions and code alike) reuses it.

Example:
    >>> embedded("toy-seq2seq") is embedded("toy-seq2seq")
    True
"""

from __future__ import annotations

import functools

from llminspect.inspector import Inspector, load


@functools.lru_cache(maxsize=4)
def embedded(name: str) -> Inspector:
    """An embedded model ("encoder", "decoder", "encoder-decoder", "toy-seq2seq"), loaded on first use."""
    return load(name, device="cpu")
