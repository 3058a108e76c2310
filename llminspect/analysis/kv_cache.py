"""The key/value cache, live: the same greedy text with and without it, timed, and the cache growing.

Without a cache, every new token re-reads the whole text: step t runs the model on t tokens.
With one, each layer keeps the keys and values of the tokens already read, so step t runs on one
new token and attends to the kept ones: [1, key/value heads, tokens so far, head size] per
layer, keys and values each, growing by one position per step. The text must come out the same —
the cache only saves work. Both loops call the model's own forward (``use_cache``); the cache is
transformers' ``DynamicCache``.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> run = kv_cache_run(m, m.inputs("The capital of France is"), steps=3)
    >>> run.same_tokens, run.key_shapes[-1]
    (True, (1, 3, 7, 64))
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import run
from llminspect.analysis.tokens import token_labels
from llminspect.errors import InputError


@dataclass(frozen=True)
class CacheRun:
    """Greedy generation with and without the key/value cache."""

    prompt: str
    tokens: list[str]  # written with the cache
    tokens_without: list[str]
    seconds_with: float
    seconds_without: float
    key_shapes: list[tuple[int, ...]]  # layer 0's cached keys after each step
    cache_bytes: list[int]  # keys and values of every layer after each step
    largest_gap: float  # largest |logit with cache − logit without| over all steps

    @property
    def same_tokens(self) -> bool:
        return self.tokens == self.tokens_without

    @property
    def speedup(self) -> float:
        return self.seconds_without / self.seconds_with


def _cache_argument(model) -> str:
    """transformers 5 names the cache ``cache``; older model classes still say ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(out):
    return getattr(out, "cache", None) or out.past_key_values


def kv_cache_run(m, inputs: Inputs, steps: int = 20) -> CacheRun:
    """Write ``steps`` greedy tokens twice — re-reading everything each step, then with the cache."""
    m.require_decoder("The key/value cache")
    steps = whole_number(steps, "steps", minimum=None)
    if not 1 <= steps <= 200:
        raise InputError(f"steps={steps}: write 1 to 200 tokens.")
    ids = list(inputs.tokens.ids)
    without, gaps, uncached_logits = list(ids), [], []
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            logits = run(m, {"input_ids": torch.tensor([without], device=m.device)}).logits[0, -1]
            uncached_logits.append(logits)
            without.append(int(logits.argmax()))
    seconds_without = time.perf_counter() - start
    name, written, shapes, sizes = _cache_argument(m.model), list(ids), [], []
    start = time.perf_counter()
    with torch.no_grad():
        out = run(m, {"input_ids": torch.tensor([written], device=m.device)}, use_cache=True).output
        for step in range(steps):
            logits = out.logits[0, -1]
            gaps.append(float((logits - uncached_logits[step]).abs().max()))
            written.append(int(logits.argmax()))
            cache = _cache_of(out)
            shapes.append(tuple(cache.layers[0].keys.shape))
            sizes.append(sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers))
            if step < steps - 1:
                step_ids = {"input_ids": torch.tensor([[written[-1]]], device=m.device)}
                out = run(m, step_ids, use_cache=True, **{name: cache}).output
    seconds_with = time.perf_counter() - start
    new = len(ids)
    return CacheRun(inputs.tokens.text, token_labels(m.tokenizer, written[new:]),
                    token_labels(m.tokenizer, without[new:]), seconds_with, seconds_without, shapes, sizes,
                    max(gaps))  # fmt: skip
