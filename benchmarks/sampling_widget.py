"""One knob update of the sampling lab on cached logits, against one forward pass of the model.

A slider move re-applies transformers' processors to the cached scores (49,152-token vocabulary)
and rebuilds the bar chart; the model itself runs only when the prompt or the text changes.
Goal: < 50 ms per update on CPU. Run: ``python benchmarks/sampling_widget.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from timing import median_seconds  # noqa: E402

import llminspect as li  # noqa: E402
from llminspect.analysis.sampling import Knobs  # noqa: E402

PROMPT = "The best thing about AI is its ability to"


def main() -> None:
    m = li.load("decoder")
    widget = li.labs.sampling(m, PROMPT)
    settings = iter([0.5, 0.7, 0.9, 1.1, 1.3] * 100)

    def knob_update() -> None:
        widget.sliders["temperature"].value = next(settings)

    ids = m.tokenizer(PROMPT, return_tensors="pt").input_ids

    def forward() -> None:
        with torch.no_grad():
            m.model(input_ids=ids)

    update = median_seconds(knob_update, 15)
    full = Knobs(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05, repetition_penalty=1.2)
    stages = median_seconds(lambda: widget.sampling.stages(full), 15)
    model = median_seconds(forward, 15)
    print(f"device: cpu, torch threads: {torch.get_num_threads()}; vocabulary {m.config.vocab_size:,}")
    print(f"knob update (processors + chart): {update * 1000:7.1f} ms")
    print(f"all five processors only:         {stages * 1000:7.1f} ms")
    print(f"one forward pass ({ids.shape[1]} tokens):      {model * 1000:7.1f} ms")
    print(f"ratio knob update / forward: {update / model:.2f}x")


if __name__ == "__main__":
    main()
