"""Checks before a model is loaded: safe file formats, and whether it fits in memory.

- **Safe by default.** A pickle checkpoint (``pytorch_model.bin``, ``.pt``, ``.ckpt``) can run
  arbitrary code while it is read; safetensors files cannot. ``load`` refuses pickle files
  unless ``allow_pickle=True`` (and then warns), and never runs a model's own Python code
  unless ``trust_remote_code=True``.
- **Fits, or says so.** The weights' size at the chosen dtype (from the safetensors headers,
  without reading the weights) is compared with the memory free on the target device; a model
  that would not fit is refused with a suggestion (``offload="disk"``) instead of being killed
  by the operating system halfway through loading.

Example:
    >>> from llminspect.models.registry import model_directory
    >>> import torch
    >>> round(weights_bytes(model_directory("decoder"), torch.float32) / 2**20)
    513
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from llminspect.errors import ModelFileError, OutOfMemoryError
from llminspect.models.streaming import tensor_index

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
HEADROOM = 1.2  # loading briefly needs a little more than the weights (tokenizer, buffers, Python)


def check_files(folder: str | Path, allow_pickle: bool) -> None:
    """Refuse a folder whose weights are only pickle files (unless ``allow_pickle``), or damaged safetensors."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    if any(folder.glob("*.safetensors")):
        tensor_index(folder)  # reads the headers only: a damaged or cut file is refused here, clearly
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickles:
        return
    if not allow_pickle:
        raise ModelFileError(
            f"{folder} holds its weights only as pickle files ({', '.join(pickles)}), which can run arbitrary code "
            "when loaded. Convert them to safetensors, or pass allow_pickle=True if you trust where they came from."
        )
    warnings.warn(f"Loading pickle weights from {folder} (allow_pickle=True): only do this for files you trust.",
                  stacklevel=3)  # fmt: skip


def weights_bytes(folder: str | Path, dtype: torch.dtype) -> int | None:
    """Bytes the weights will take at ``dtype``, from the safetensors headers; None when there are none to read."""
    index = tensor_index(folder) if Path(folder).is_dir() else {}
    if not index:
        return None
    count = sum(int(torch.Size(info["shape"]).numel()) for info in index.values())
    return count * torch.finfo(dtype).bits // 8


def free_bytes(device: torch.device) -> int | None:
    """Memory free on ``device`` now (GPU: the driver's count; CPU: the kernel's MemAvailable), or None."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(folder: str | Path, dtype: torch.dtype, device: torch.device, free: int | None = None) -> None:
    """Refuse to load what will not fit in the free memory of ``device`` (with a little headroom)."""
    need = weights_bytes(folder, dtype)
    free = free_bytes(device) if free is None else free
    if need is None or free is None or need * HEADROOM <= free:
        return
    where = "GPU" if device.type == "cuda" else "RAM"
    raise OutOfMemoryError(
        f"The weights need about {need / 2**30:.1f} GiB at {str(dtype).removeprefix('torch.')}, but only "
        f"{free / 2**30:.1f} GiB of {where} is free. Load with offload='disk' to stream one block at a time, "
        "choose a smaller dtype (dtype='bfloat16'), or free some memory."
    )
