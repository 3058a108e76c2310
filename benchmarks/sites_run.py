"""The site layer's cost: ``m.run`` against transformers' own capture, and interventions against one forward.

- ``m.run(text, keep=["embeddings", "layer.*.output"])`` against ``model(..., output_hidden_states=True)``
  (the same numbers: the stream before and after every block), at 5 and 256 tokens; goal ≤ 1.1×.
- activation patching (30 blocks × 5 positions: 30 batched passes of 5 rows) and every head's
  effect (270 ablations: 30 batched passes of 9 rows), each against one plain forward of the same
  prompt, on a quiet machine and with 4 busy processes beside it (what a room's neighbours do).

Timings interleave the cases and take medians, in one process. Run: ``python benchmarks/sites_run.py``.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

import torch
from timing import median_seconds

import llminspect as li

PROMPT, CORRUPT, ANSWER = "The capital of France is", "The capital of Italy is", " Paris"


def run_against_hidden_states(m, tokens: int, repeats: int = 15) -> tuple[float, float]:
    ids = m.tokenizer("The quick brown fox jumps over the lazy dog. " * 40).input_ids[:tokens]
    inputs = m.inputs(m.tokenizer.decode(ids))

    def ours():
        return m.run(inputs.tokens.text, keep=["embeddings", "layer.*.output"])

    def theirs():
        with torch.no_grad():
            return m.model(**inputs.tensors, output_hidden_states=True, use_cache=False)

    ours(), theirs()  # warm
    pairs = [(median_seconds(ours, 1, warm_up=False), median_seconds(theirs, 1, warm_up=False)) for _ in range(repeats)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def interventions(m, repeats: int = 3) -> dict[str, float]:
    inputs = m.inputs(PROMPT)

    def plain():
        with torch.no_grad():
            m.model(**inputs.tensors, use_cache=False)

    plain()
    return {
        "one forward": median_seconds(plain, 10),
        "patching (30 x 5)": median_seconds(lambda: m.patching(PROMPT, CORRUPT, ANSWER), repeats, warm_up=False),
        "head effects (270)": median_seconds(lambda: m.head_effects(PROMPT, ANSWER), repeats, warm_up=False),
    }


def _spin(until: float) -> None:
    while time.time() < until:
        pass


def main() -> None:
    torch.manual_seed(0)
    m = li.load("decoder", device="cpu")
    print(f"torch threads: {torch.get_num_threads()}, device cpu")
    for tokens in (5, 256):
        ours, theirs = run_against_hidden_states(m, tokens)
        print(f"m.run(keep=every block output), {tokens} tokens: {ours * 1000:.1f} ms vs output_hidden_states "
              f"{theirs * 1000:.1f} ms -> {ours / theirs:.2f}x")
    quiet = interventions(m)
    busy_until = time.time() + 600
    spinners = [multiprocessing.Process(target=_spin, args=(busy_until,), daemon=True) for _ in range(4)]
    for spinner in spinners:
        spinner.start()
    try:
        busy = interventions(m, repeats=1)
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()
    for name in quiet:
        ratio_quiet = quiet[name] / quiet["one forward"]
        ratio_busy = busy[name] / busy["one forward"]
        print(f"{name:>20}: quiet {quiet[name]:7.3f} s ({ratio_quiet:6.1f}x one forward), "
              f"4 busy processes {busy[name]:7.3f} s ({ratio_busy:6.1f}x)")


if __name__ == "__main__":
    main()
