"""Integrated gradients (50 steps) on a 20-token prompt with the embedded decoder: our call
against captum's ``LLMGradientAttribution`` default on the same input, time and peak memory.

Each variant runs in its own process, five times after a warm-up (median time); peak memory is
the highest resident size sampled every 2 ms during a call, minus the size just before it (so
the model itself is not counted). Goal: not slower, lower peak memory. Our steps run in batches
of 25 (``internal_batch_size``); captum's default runs all 50 at once: fewer, larger batches are
a little faster on a CPU and need more memory. Run: ``python benchmarks/importance.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

PROMPT = "In a quiet village by the sea, the old fisherman told the children that the capital of France is"


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def measure(run) -> dict:
    peak, done = [rss_mb()], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(rss_mb())
            time.sleep(0.002)

    before = rss_mb()
    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"seconds": seconds, "peak_mb": max(peak) - before}


def child(variant: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import llminspect as li

    m = li.load("decoder")
    tokens = len(m.tokenize(PROMPT))
    if variant == "ours":

        def run() -> None:
            m.importance(PROMPT, " Paris", "integrated_gradients", n_steps=50)
    else:
        from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

        attribution = LLMGradientAttribution(
            LayerIntegratedGradients(m.model, m.model.get_input_embeddings()), m.tokenizer
        )

        def run() -> None:
            attribution.attribute(TextTokenInput(PROMPT, m.tokenizer), target=" Paris")

    run()  # warm-up
    runs = [measure(run) for _ in range(5)]
    seconds = sorted(r["seconds"] for r in runs)[len(runs) // 2]
    print(json.dumps({"tokens": tokens, "seconds": seconds, "peak_mb": max(r["peak_mb"] for r in runs)}))


def main() -> None:
    results = {}
    for variant in ("ours", "captum"):
        out = subprocess.run([sys.executable, __file__, variant], capture_output=True, text=True, check=True)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, theirs = results["ours"], results["captum"]
    print(f"prompt: {ours['tokens']} tokens; integrated gradients, 50 steps; CPU")
    print(f"{'':28s} {'time':>8s} {'peak memory':>12s}")
    print(f"{'llminspect (batches of 25)':28s} {ours['seconds']:7.2f}s {ours['peak_mb']:10.0f}MB")
    print(f"{'captum LLMGradientAttribution':28s} {theirs['seconds']:7.2f}s {theirs['peak_mb']:10.0f}MB")
    print(
        f"ratio ours/captum: time {ours['seconds'] / theirs['seconds']:.2f}x, "
        f"peak memory {ours['peak_mb'] / max(theirs['peak_mb'], 1e-9):.2f}x"
    )


if __name__ == "__main__":
    child(sys.argv[1]) if len(sys.argv) > 1 else main()
