"""Tracing a model bigger than memory: peak memory and load throughput of ``load(..., offload=...)``.

Builds a random-init Llama-architecture model of a few GB (weights do not matter for memory or
time), saves it as safetensors, and traces one 32-token prompt with hidden states and attentions:

- ``import``: Python + torch + transformers + llminspect imported, nothing loaded (the floor);
- ``read``: the raw read speed of the same files (the throughput baseline);
- ``full``: a plain load, then the trace (the memory baseline);
- ``disk``: ``offload="disk"`` — blocks stay in the files and stream in per layer while they run;
- ``disk-transformers``: ``from_pretrained(device_map=...)`` with blocks on "disk" (what
  ``offload="disk"`` falls back to), which reads every block once while loading.
On a GPU it also runs ``offload="cpu"`` and ``offload="disk"`` on the GPU and reports peak GPU memory.

Each case runs in its own child process (peak RSS is per process), with the files evicted from
the page cache before it (``posix_fadvise(DONTNEED)``), so every read is cold. Printed: peaks
against model size and against one block's size, and throughput against raw read, as ratios.
Goals: peak <= 1.5 x (largest block + the layers kept loaded) + activations; throughput >= 0.8 x raw.
``full`` and ``disk`` go through ``llminspect.load`` and ``Inspector.trace``, the product's own path.
Run: ``python benchmarks/layer_streaming.py [--layers 16] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROMPT = "The quick brown fox jumps over the lazy dog. " * 3  # 30 tokens


def config(layers: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=49152, hidden_size=2048, intermediate_size=5632, num_hidden_layers=layers,
        num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=False,
    )  # fmt: skip


def build(folder: Path, layers: int) -> None:
    """Save a random-init Llama with the embedded decoder's tokenizer; skipped when the folder holds one."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from llminspect.models.loading import quiet_transformers
    from llminspect.models.registry import model_directory

    if list(folder.glob("*.safetensors")):
        return
    torch.manual_seed(0)
    with quiet_transformers():
        LlamaForCausalLM(config(layers)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_directory("decoder")).save_pretrained(folder)


def evict(folder: Path) -> None:
    """Drop the files' pages from the page cache so the next read comes from disk."""
    for path in folder.glob("*.safetensors"):
        with open(path, "rb") as handle:
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def read_piece(piece: tuple[Path, int, int]) -> int:
    """Read the ``index``-th of ``parts`` equal slices of a file with plain read() calls; return the bytes read."""
    path, index, parts = piece
    size = path.stat().st_size
    start, end = index * size // parts, (index + 1) * size // parts
    done = 0
    with open(path, "rb", buffering=0) as handle:
        handle.seek(start)
        while done < end - start and (chunk := handle.read(min(64 << 20, end - start - done))):
            done += len(chunk)
    return done


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(mode: str, folder: Path, out: Path) -> None:
    """One measurement in this (fresh) process; writes a JSON line to ``out``."""
    result: dict = {"mode": mode}
    if mode == "build":
        return build(folder, int(out.name))
    if mode.startswith("read"):
        threads = int(mode.partition(":")[2] or 1)
        files = sorted(folder.glob("*.safetensors"))
        pieces = [(path, i, threads) for path in files for i in range(threads)]
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            size = sum(pool.map(read_piece, pieces))
        result.update(seconds=time.perf_counter() - start, bytes=size)
    else:
        import torch
        from transformers import AutoTokenizer, LlamaForCausalLM

        import llminspect as li
        from llminspect.analysis.progress import layer_progress
        from llminspect.models.loading import empty_model, offload_map, quiet_transformers

        if mode != "import":
            device, _, offload = mode.partition(":") if ":" in mode else ("cpu", "", mode)
            # one-time costs of a fresh process (imports, first from_pretrained) paid before the clock starts
            AutoTokenizer.from_pretrained(folder), config_of(folder), li.load("toy-seq2seq", offload="disk")
            start = time.perf_counter()
            if offload == "disk-transformers":  # from_pretrained's disk offload: reads every block once to load
                with quiet_transformers():
                    plan = offload_map(empty_model(config_of(folder), LlamaForCausalLM), device, "disk")
                    model = LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager", device_map=plan)
                m = li.Inspector(model, AutoTokenizer.from_pretrained(folder))
            else:
                m = li.load(str(folder), device=device, offload=None if offload == "full" else offload)
            loaded = time.perf_counter() - start
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            with layer_progress(m.model, show=False) as timing:
                trace = m.trace(PROMPT, progress=False)
            traced = time.perf_counter() - start
            torch.save({"hidden": trace.hidden_states, "attentions": trace.attentions}, out.with_suffix(".pt"))
            result.update(load_seconds=loaded, trace_seconds=traced, slowest_layer=max(timing.seconds))
            if device.startswith("cuda"):
                result.update(gpu_peak_mib=torch.cuda.max_memory_allocated() / 2**20, gpu=torch.cuda.get_device_name())
    result["peak_rss_mib"] = peak_rss_mib()
    out.write_text(json.dumps(result))


def config_of(folder: Path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder)


def run_child(mode: str, folder: Path, scratch: Path, repeats: int) -> dict:
    """Run one case ``repeats`` times, each in a fresh process with cold files; keep the run with the median time."""
    out = scratch / f"{mode.replace(':', '_')}.json"
    runs = []
    for _ in range(repeats):
        evict(folder)
        subprocess.run([sys.executable, __file__, "--child", mode, str(folder), str(out)], check=True)
        runs.append(json.loads(out.read_text()))
    runs.sort(key=lambda r: r.get("seconds", 0) + r.get("load_seconds", 0) + r.get("trace_seconds", 0))
    return runs[len(runs) // 2]


def sizes(folder: Path) -> dict:
    """Bytes (fp32) of the whole model, of one block, and of what stays loaded (embeddings, final norm, head)."""
    from llminspect.models.streaming import tensor_index

    count = {name: 4 * math.prod(info["shape"]) for name, info in tensor_index(folder).items()}
    return {
        "model": sum(count.values()),
        "block": sum(n for name, n in count.items() if name.startswith("model.layers.0.")),
        "kept": sum(n for name, n in count.items() if not name.startswith("model.layers.")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--keep", type=Path, help="folder for the model files (kept between runs)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder, out = args.child
        return child(mode, Path(folder), Path(out))

    import torch

    with tempfile.TemporaryDirectory(prefix="llminspect-stream-") as scratch_name:
        scratch = Path(scratch_name)
        folder = args.keep or scratch / "model"
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", "build", str(folder), str(args.layers)], check=True)
        size = sizes(folder)
        mib = {name: value / 2**20 for name, value in size.items()}
        print(f"random-init Llama, {args.layers} layers: {mib['model']:,.0f} MiB of fp32 safetensors "
              f"(one block {mib['block']:,.0f} MiB; embeddings + head kept loaded {mib['kept']:,.0f} MiB); "
              f"built in {time.perf_counter() - start:.0f} s")  # fmt: skip
        modes = ["import", "read", "read:8", "full", "disk-transformers", "disk"]
        if torch.cuda.is_available():
            modes += ["cuda:cpu", "cuda:disk-transformers", "cuda:disk"]
        results = {mode: run_child(mode, folder, scratch, args.repeats) for mode in modes}
        floor = results["import"]["peak_rss_mib"]
        sequential = results["read"]["bytes"] / results["read"]["seconds"]
        raw_speed = max(sequential, results["read:8"]["bytes"] / results["read:8"]["seconds"])
        reference = torch.load(scratch / "full.pt")
        print(f"\nimport floor (Python, torch, transformers): {floor:,.0f} MiB; raw cold read: "
              f"{sequential / 2**20:,.0f} MiB/s with one read() stream, {raw_speed / 2**20:,.0f} MiB/s at best "
              "(8 threads) - the baseline below")  # fmt: skip
        print(f"{'case':<18} {'peak RSS':>9} {'- floor':>8} {'/model':>7} {'/block':>7} {'load+trace':>11} "
              f"{'MiB/s':>7} {'/raw':>6}  same trace")  # fmt: skip
        for mode in modes[3:]:
            r = results[mode]
            above = r["peak_rss_mib"] - floor
            seconds = r["load_seconds"] + r["trace_seconds"]
            speed = size["model"] / seconds
            got = torch.load(scratch / f"{mode.replace(':', '_')}.pt")
            same = all(torch.equal(got[k], reference[k]) for k in ("hidden", "attentions"))
            print(f"{mode:<18} {r['peak_rss_mib']:>7,.0f} M {above:>6,.0f} M {above / mib['model']:>6.2f}x "
                  f"{above / mib['block']:>6.2f}x {seconds:>9.2f} s {speed / 2**20:>7,.0f} {speed / raw_speed:>5.2f}x  "
                  f"{same}  (load {r['load_seconds']:.2f} s, trace {r['trace_seconds']:.2f} s)")  # fmt: skip
            if "gpu_peak_mib" in r:
                print(f"{'':<18} peak GPU memory {r['gpu_peak_mib']:,.0f} MiB on {r['gpu']}")
        bound = 1.5 * (mib["block"] + mib["kept"])
        print(f"\ngoal: peak above the floor <= 1.5 x (block + kept layers) = {bound:,.0f} MiB (+ activations); "
              f"disk: {results['disk']['peak_rss_mib'] - floor:,.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
