"""Read a CTranslate2 Whisper model file into a Hugging Face ``WhisperForConditionalGeneration``.

The embedded encoder-decoder ships as CTranslate2's ``model.bin`` (spec ``WhisperSpec``), which
transformers cannot read. The file is simple: a header, then named little-endian arrays. We read
it with ``struct`` and ``numpy`` and rename every array to the transformers layout. Two details
matter: CTranslate2 fuses q/k/v (and the cross-attention k/v) into one linear layer, which we
split; Whisper's key projections carry no bias, so that third of the fused bias is dropped (it
is zero). The output projection is tied to the token embeddings in both formats.

Example:
    >>> from llminspect.models.registry import EMBEDDED, source_path
    >>> spec, arrays = read_ct2_arrays(source_path(EMBEDDED["encoder-decoder"]) / "model.bin")
    >>> spec, whisper_state_dict(arrays)["model.encoder.conv1.weight"].shape
    ('WhisperSpec', (384, 80, 3))
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from llminspect.errors import ModelFileError

# CTranslate2's dtype codes, in the order of its DataType enum.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.float64}
_BFLOAT16 = 6


class _Reader:
    """Sequential little-endian reader over the bytes of one file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def scalar(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.scalar("H")  # length includes a trailing NUL
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.rstrip(b"\0").decode("utf-8")

    def array(self, shape: list[int], dtype_code: int, nbytes: int) -> np.ndarray:
        raw = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        if dtype_code == _BFLOAT16:
            # bfloat16 is the top half of a float32.
            wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            return wide.view(np.float32).reshape(shape)
        if dtype_code not in _DTYPES:
            raise ModelFileError(f"Unknown CTranslate2 dtype code {dtype_code}.")
        return np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype_code]).newbyteorder("<")).reshape(shape)


def read_ct2_arrays(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """Return the spec name and every named array (aliases resolved) of a CTranslate2 file."""
    reader = _Reader(Path(path).read_bytes())
    version = reader.scalar("I")
    if version < 5:
        raise ModelFileError(f"{path}: CTranslate2 format version {version} is not supported (need >= 5).")
    spec = reader.string()
    reader.scalar("I")  # spec revision
    arrays: dict[str, np.ndarray] = {}
    for _ in range(reader.scalar("I")):
        name = reader.string()
        rank = reader.scalar("B")
        shape = [reader.scalar("I") for _ in range(rank)]
        dtype_code = reader.scalar("B")
        nbytes = reader.scalar("I")
        arrays[name] = reader.array(shape, dtype_code, nbytes)
    for _ in range(reader.scalar("I")):
        alias, target = reader.string(), reader.string()
        arrays[alias] = arrays[target]
    if reader.pos != len(reader.data):
        raise ModelFileError(f"{path}: {len(reader.data) - reader.pos} unread bytes; the file is not what we expect.")
    return spec, arrays


def whisper_dimensions(arrays: dict[str, np.ndarray]) -> dict[str, int]:
    """The ``WhisperConfig`` sizes implied by the arrays of a CTranslate2 Whisper file."""

    def count_layers(side: str) -> int:
        parts = {name.split("/")[1] for name in arrays if name.startswith(f"{side}/")}
        return sum(1 for part in parts if re.fullmatch(r"layer_\d+", part))

    vocab, d_model = arrays["decoder/embeddings/weight"].shape
    return {
        "vocab_size": int(vocab),
        "d_model": int(d_model),
        "num_mel_bins": int(arrays["encoder/conv1/weight"].shape[1]),
        "encoder_layers": count_layers("encoder"),
        "decoder_layers": count_layers("decoder"),
        "encoder_attention_heads": int(arrays["encoder/num_heads"]),
        "decoder_attention_heads": int(arrays["decoder/num_heads"]),
        "encoder_ffn_dim": int(arrays["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(arrays["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "max_source_positions": int(arrays["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(arrays["decoder/position_encodings/encodings"].shape[0]),
    }


def _linear(out: dict, prefix: str, arrays: dict, source: str, with_bias: bool = True) -> None:
    out[f"{prefix}.weight"] = arrays[f"{source}/weight"]
    if with_bias:
        out[f"{prefix}.bias"] = arrays[f"{source}/bias"]


def _norm(out: dict, prefix: str, arrays: dict, source: str) -> None:
    out[f"{prefix}.weight"] = arrays[f"{source}/gamma"]
    out[f"{prefix}.bias"] = arrays[f"{source}/beta"]


def _split_linear(out: dict, prefixes: list[str], arrays: dict, source: str) -> None:
    """Split a fused projection into equal parts; key projections get no bias."""
    weights = np.split(arrays[f"{source}/weight"], len(prefixes), axis=0)
    biases = np.split(arrays[f"{source}/bias"], len(prefixes), axis=0)
    for prefix, weight, bias in zip(prefixes, weights, biases, strict=True):
        out[f"{prefix}.weight"] = weight
        if not prefix.endswith("k_proj"):
            out[f"{prefix}.bias"] = bias


def _layer(out: dict, arrays: dict, side: str, index: int) -> None:
    src = f"{side}/layer_{index}"
    dst = f"model.{side}.layers.{index}"
    _norm(out, f"{dst}.self_attn_layer_norm", arrays, f"{src}/self_attention/layer_norm")
    _split_linear(out, [f"{dst}.self_attn.{p}_proj" for p in "qkv"], arrays, f"{src}/self_attention/linear_0")
    _linear(out, f"{dst}.self_attn.out_proj", arrays, f"{src}/self_attention/linear_1")
    if side == "decoder":
        _norm(out, f"{dst}.encoder_attn_layer_norm", arrays, f"{src}/attention/layer_norm")
        _linear(out, f"{dst}.encoder_attn.q_proj", arrays, f"{src}/attention/linear_0")
        _split_linear(out, [f"{dst}.encoder_attn.{p}_proj" for p in "kv"], arrays, f"{src}/attention/linear_1")
        _linear(out, f"{dst}.encoder_attn.out_proj", arrays, f"{src}/attention/linear_2")
    _norm(out, f"{dst}.final_layer_norm", arrays, f"{src}/ffn/layer_norm")
    _linear(out, f"{dst}.fc1", arrays, f"{src}/ffn/linear_0")
    _linear(out, f"{dst}.fc2", arrays, f"{src}/ffn/linear_1")


def whisper_state_dict(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename CTranslate2 Whisper arrays to a ``WhisperForConditionalGeneration`` state dict."""
    dims = whisper_dimensions(arrays)
    out: dict[str, np.ndarray] = {}
    _linear(out, "model.encoder.conv1", arrays, "encoder/conv1")
    _linear(out, "model.encoder.conv2", arrays, "encoder/conv2")
    out["model.encoder.embed_positions.weight"] = arrays["encoder/position_encodings/encodings"]
    out["model.decoder.embed_positions.weight"] = arrays["decoder/position_encodings/encodings"]
    out["model.decoder.embed_tokens.weight"] = arrays["decoder/embeddings/weight"]
    for side in ("encoder", "decoder"):
        for index in range(dims[f"{side}_layers"]):
            _layer(out, arrays, side, index)
        _norm(out, f"model.{side}.layer_norm", arrays, f"{side}/layer_norm")
    return out
