"""Open a model for streaming from disk without reading its blocks at load time.

``from_pretrained(..., device_map=...)`` with blocks on "disk" works, but transformers 5 still
reads every tensor once while loading (to convert it) and then drops the offloaded ones: a
70B model would be read in full before the first token. Here the model is built empty (meta
device), only the layers that stay loaded are read, and accelerate's ``dispatch_model`` gets an
*offload index* pointing at each block tensor inside the original safetensors files — so a
block's bytes are read for the first time when the block runs. When the files' tensor names do
not match the model's (a checkpoint that needs transformers' renaming), ``open_streamed``
returns None and ``load`` uses ``from_pretrained``.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder", offload="disk")
    >>> m.model.model.layers[0].mlp.up_proj.weight.device.type, m.model.lm_head.weight.device.type
    ('meta', 'cpu')
"""

from __future__ import annotations

from pathlib import Path

import torch

from llminspect.errors import ModelFileError


def tensor_index(folder: str | Path) -> dict[str, dict]:
    """Every tensor in the folder's safetensors files: file, name, dtype and shape (accelerate's index format)."""
    from safetensors import SafetensorError, safe_open

    index = {}
    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(path, "pt") as handle:
                for name in handle.keys():
                    piece = handle.get_slice(name)
                    dtype = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}.get(piece.get_dtype())
                    index[name] = {"safetensors_file": str(path), "weight_name": name, "dtype": dtype,
                                   "shape": list(piece.get_shape())}  # fmt: skip
        except (SafetensorError, OSError) as error:
            raise ModelFileError(
                f"{path} is damaged or incomplete ({error}). Copy or download it again; its size should match "
                "the original's."
            ) from error
    return index


def open_streamed(source: str | Path, model, device, dtype: torch.dtype, plan: dict[str, str]):
    """Fill the empty (meta-device) ``model`` from ``source``, leaving every ``plan`` entry on "disk" in the files.

    Returns the dispatched model, or None when the files' tensor names do not match the model's.
    """
    import accelerate
    from accelerate.utils import set_module_tensor_to_device
    from safetensors import safe_open

    index = tensor_index(source)
    streamed = tuple(f"{name}." for name, where in plan.items() if where == "disk")
    expected = dict(model.state_dict(keep_vars=True))
    kept = [name for name in expected if not name.startswith(streamed) and name in index]
    if any(name not in index for name in expected if name.startswith(streamed)):
        return None
    by_file: dict[str, list[str]] = {}
    for name in kept:
        by_file.setdefault(index[name]["safetensors_file"], []).append(name)
    for path, names in by_file.items():
        with safe_open(path, "pt") as handle:  # short-lived: a handle held open keeps its pages resident
            for name in names:
                set_module_tensor_to_device(model, name, device, value=handle.get_tensor(name), dtype=dtype)
    model.tie_weights()  # an LM head tied to the embeddings is not in the file: share the loaded matrix
    if any(t.device.type == "meta" for n, t in model.state_dict(keep_vars=True).items() if not n.startswith(streamed)):
        return None
    for info in index.values():
        if info["dtype"] is not None:
            info["dtype"] = str(dtype).removeprefix("torch.")  # accelerate converts each block as it reads it
    accelerate.dispatch_model(
        model,
        device_map=plan,
        main_device=str(device),  # accelerate compares it with the string "cpu"
        offload_index={name: info for name, info in index.items() if name.startswith(streamed)},
    )
    model.hf_device_map = plan
    return model.eval()
