"""How fast the attention explorer is at 128, 512 and 1,024 tokens, next to bertviz.

Times (median of a few runs, on the embedded decoder: 30 layers x 9 heads) of
- building the explorer (per-head summaries for every layer and head + the first drawing),
- switching the head shown, on the Python side (the full-resolution box and the token's row; the
  page redraws the whole map itself: ``browser_views.py`` measures what the learner waits for),
- bertviz's model view build on the same attentions (at 1,024 tokens bertviz would serialize
  about 283 million weights to JSON: that case is skipped and said so).
Goal: switching a head < 200 ms at 1,024 tokens on CPU. Run: ``python benchmarks/attention_view.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from timing import median_seconds  # noqa: E402

import llminspect as li  # noqa: E402
from llminspect.analysis.trace import Trace  # noqa: E402
from llminspect.views.bertviz_offline import bertviz_html  # noqa: E402

BERTVIZ_MAX = 512


def long_trace(m, n: int) -> Trace:
    text = "The quick brown fox jumps over the lazy dog. " * n
    ids = m.tokenizer(text).input_ids[:n]
    return m.trace(m.tokenizer.decode(ids))


def main() -> None:
    m = li.load("decoder")
    print(f"device: cpu, torch threads: {torch.get_num_threads()}; decoder: 30 layers x 9 heads")
    print(f"{'tokens':>6s} {'build':>9s} {'switch head':>12s} {'bertviz model view':>19s} {'bertviz / build':>16s}")
    for n in (128, 512, 1024):
        trace = long_trace(m, n)
        build = median_seconds(lambda trace=trace: li.labs.attention(trace, layer=15, head=0), 3, warm_up=False)
        explorer = li.labs.attention(trace, layer=15, head=0)
        heads = iter(range(10_000))

        def switch(explorer=explorer, heads=heads) -> None:
            explorer.head = next(heads) % 9

        switch_s = median_seconds(switch, 9, warm_up=False)
        if len(trace.tokens) <= BERTVIZ_MAX:
            layers = tuple(layer[None] for layer in trace.attentions)
            bertviz_s = median_seconds(
                lambda layers=layers, trace=trace: bertviz_html("model", layers, trace.tokens.labels), 1, warm_up=False
            )
            bertviz = f"{bertviz_s:17.2f}s {bertviz_s / build:15.1f}x"
        else:
            bertviz = f"{'skipped (too big)':>19s} {'-':>16s}"
        print(f"{len(trace.tokens):6d} {build:8.2f}s {switch_s * 1000:10.0f}ms {bertviz}")


if __name__ == "__main__":
    main()
