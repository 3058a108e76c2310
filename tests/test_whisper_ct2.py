"""The CTranslate2 reader and the Whisper renaming, on a tiny synthetic file and on the real one."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from llminspect.errors import ModelFileError
from llminspect.models.registry import EMBEDDED, source_path
from llminspect.models.whisper_ct2 import read_ct2_arrays, whisper_dimensions, whisper_state_dict


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path, arrays: dict[str, np.ndarray], aliases: dict[str, str], version: int = 6) -> None:
    """Write a CTranslate2 file by its documented layout (little-endian, f32/f16/i16 arrays)."""
    codes = {np.dtype(np.float32): 0, np.dtype(np.int16): 2, np.dtype(np.float16): 4}
    out = struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(arrays))
    for name, array in arrays.items():
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        out += _string(name) + struct.pack("<B", array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape)
        out += struct.pack("<B", codes[array.dtype]) + struct.pack("<I", len(raw)) + raw
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)


def tiny_whisper_arrays(d: int = 8, ffn: int = 16, vocab: int = 11, mels: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float16)

    arrays = {
        "encoder/conv1/weight": r(d, mels, 3),
        "encoder/conv1/bias": r(d),
        "encoder/conv2/weight": r(d, d, 3),
        "encoder/conv2/bias": r(d),
        "encoder/position_encodings/encodings": r(6, d),
        "decoder/position_encodings/encodings": r(5, d),
        "decoder/embeddings/weight": r(vocab, d),
        "encoder/num_heads": np.array(2, dtype=np.int16),
        "decoder/num_heads": np.array(2, dtype=np.int16),
    }
    for side in ("encoder", "decoder"):
        arrays[f"{side}/layer_norm/gamma"], arrays[f"{side}/layer_norm/beta"] = r(d), r(d)
        prefix = f"{side}/layer_0"
        blocks = {"self_attention": [("linear_0", 3 * d), ("linear_1", d)], "ffn": [("linear_0", ffn), ("linear_1", d)]}
        if side == "decoder":
            blocks["attention"] = [("linear_0", d), ("linear_1", 2 * d), ("linear_2", d)]
        for block, linears in blocks.items():
            arrays[f"{prefix}/{block}/layer_norm/gamma"], arrays[f"{prefix}/{block}/layer_norm/beta"] = r(d), r(d)
            for linear, rows in linears:
                cols = ffn if (block == "ffn" and linear == "linear_1") else d
                arrays[f"{prefix}/{block}/{linear}/weight"] = r(rows, cols)
                arrays[f"{prefix}/{block}/{linear}/bias"] = r(rows)
    return arrays


def test_reader_round_trips_arrays_and_aliases(tmp_path):
    arrays = tiny_whisper_arrays()
    write_ct2(tmp_path / "model.bin", arrays, {"decoder/projection/weight": "decoder/embeddings/weight"})
    spec, read = read_ct2_arrays(tmp_path / "model.bin")
    assert spec == "WhisperSpec"
    for name, array in arrays.items():
        np.testing.assert_array_equal(read[name], array)
    np.testing.assert_array_equal(read["decoder/projection/weight"], arrays["decoder/embeddings/weight"])


def test_reader_rejects_old_versions_and_trailing_bytes(tmp_path):
    write_ct2(tmp_path / "old.bin", {}, {}, version=3)
    with pytest.raises(ModelFileError, match="version 3"):
        read_ct2_arrays(tmp_path / "old.bin")
    write_ct2(tmp_path / "long.bin", {}, {})
    (tmp_path / "long.bin").write_bytes((tmp_path / "long.bin").read_bytes() + b"xx")
    with pytest.raises(ModelFileError, match="2 unread bytes"):
        read_ct2_arrays(tmp_path / "long.bin")


def test_fused_projections_are_split_and_key_bias_dropped():
    arrays = tiny_whisper_arrays(d=8)
    state = whisper_state_dict(arrays)
    fused = arrays["encoder/layer_0/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(state["model.encoder.layers.0.self_attn.q_proj.weight"], fused[:8])
    np.testing.assert_array_equal(state["model.encoder.layers.0.self_attn.k_proj.weight"], fused[8:16])
    np.testing.assert_array_equal(state["model.encoder.layers.0.self_attn.v_proj.weight"], fused[16:])
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in state
    bias = arrays["decoder/layer_0/attention/linear_1/bias"]
    np.testing.assert_array_equal(state["model.decoder.layers.0.encoder_attn.v_proj.bias"], bias[8:])
    assert whisper_dimensions(arrays) == {
        "vocab_size": 11,
        "d_model": 8,
        "num_mel_bins": 4,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 16,
        "decoder_ffn_dim": 16,
        "max_source_positions": 6,
        "max_target_positions": 5,
    }


def test_converted_tiny_model_has_every_parameter():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    arrays = tiny_whisper_arrays()
    config = WhisperConfig(
        **whisper_dimensions(arrays), pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=1
    )
    model = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in whisper_state_dict(arrays).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert unexpected == [] and missing == ["proj_out.weight"]  # tied to the token embeddings


@pytest.mark.slow
def test_real_file_matches_the_converted_model(whisper):
    _, arrays = read_ct2_arrays(source_path(EMBEDDED["encoder-decoder"]) / "model.bin")
    params = dict(whisper.model.named_parameters())
    fused = torch.from_numpy(arrays["decoder/layer_3/attention/linear_1/weight"].astype(np.float32))
    torch.testing.assert_close(params["model.decoder.layers.3.encoder_attn.k_proj.weight"], fused[:384])
    torch.testing.assert_close(params["model.decoder.layers.3.encoder_attn.v_proj.weight"], fused[384:])
    assert whisper.model.proj_out.weight.data_ptr() == whisper.model.model.decoder.embed_tokens.weight.data_ptr()
    assert sum(p.numel() for p in whisper.model.parameters()) == 37_760_256
