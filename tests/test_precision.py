"""Precision: sizes and errors of each format, the model at each precision, and 8-bit activations — each
against a computation written here (block arithmetic by hand, a bfloat16 copy of the model, absmax rounding)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import llminspect as li
from llminspect.analysis import precision
from llminspect.errors import InputError
from llminspect.models.registry import EMBEDDED, source_path


def q8_0_by_hand(weight: torch.Tensor) -> torch.Tensor:
    """Blocks of 32: scale = max|x| / 127; each weight round(x / scale) (halves away from zero) in int8; the
    scale itself stored as float16."""
    blocks = weight.reshape(-1, 32)
    scale = blocks.abs().amax(-1, keepdim=True) / 127
    ratio = blocks / torch.where(scale == 0, 1, scale)
    steps = torch.sign(ratio) * torch.floor(ratio.abs() + 0.5)
    return (steps * scale.half().float()).reshape(weight.shape)


def test_formats_sizes_and_errors():
    weight = torch.randn(64, 256, generator=torch.Generator().manual_seed(1))
    found = {r.name: r for r in precision.matrix_precisions(weight).rows}
    n = weight.numel()
    assert {name: r.bytes for name, r in found.items()} == {"float32": 4 * n, "bfloat16": 2 * n, "float16": 2 * n,
                                                             "Q8_0": n // 32 * 34, "Q4_0": n // 32 * 18}  # fmt: skip
    assert found["float32"].largest_error == 0
    relative = lambda p: float(((precision.round_trip(weight, p)[0] - weight).abs() / weight.abs()).max())  # noqa: E731
    assert relative("bfloat16") <= 2**-8 and relative("float16") <= 2**-11  # 8 and 11 bits of mantissa
    back, _ = precision.round_trip(weight, "Q8_0")
    torch.testing.assert_close(back, q8_0_by_hand(weight), atol=1e-6, rtol=0)
    assert found["Q8_0"].rms_error < found["Q4_0"].rms_error
    with pytest.raises(InputError, match="choose from"):
        precision.round_trip(weight, "int3")
    with pytest.raises(InputError, match="32 weights"):
        precision.round_trip(torch.randn(4, 30), "Q8_0")


def test_the_shipped_4_bit_blocks_are_the_float32_model(decoder):
    weight = decoder.model.model.layers[3].mlp.down_proj.weight
    name, values, size = precision.shipped_matrix(source_path(EMBEDDED["decoder"]), "blk.3.ffn_down.weight")
    assert name == "Q4_1" and size == weight.numel() // 32 * 20  # 16 bytes of 4-bit weights + 2 float16 numbers
    assert torch.equal(values.reshape(weight.shape), weight.detach())  # float32 is the 4-bit model, expanded


def test_the_model_at_each_precision(decoder):
    texts = ["The capital of France is", "The quick brown fox jumps over the lazy dog"]
    found = {e.name: e for e in decoder.precisions(texts)}
    assert found["float32"].kl == 0 and found["float32"].agreement == 1
    half = copy.deepcopy(decoder.model).to(torch.bfloat16)  # the reference: a bfloat16 copy, KL written out
    kls, same = [], []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([decoder.tokenizer(text).input_ids])
            p = decoder.model(input_ids=ids).logits[0].double().log_softmax(-1)
            q = half(input_ids=ids).logits[0].double().log_softmax(-1)
            kls += (p.exp() * (p - q)).sum(-1).tolist()
            same += (p.argmax(-1) == q.argmax(-1)).tolist()
    assert found["bfloat16"].kl == pytest.approx(sum(kls) / len(kls) / math.log(2), rel=1e-6)
    assert found["bfloat16"].agreement == pytest.approx(sum(same) / len(same))
    assert found["Q8_0"].weight_bytes < found["bfloat16"].weight_bytes / 1.8
    assert found["Q4_0"].kl > found["Q8_0"].kl  # 4 bits on top of 4 bits loses more than 8


def _round_trip(rows: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """8-bit absmax round trip written out: round(x / (absmax / 127)), clamped to ±127, times the step."""
    step = absmax / 127
    return torch.clamp(torch.round(rows / step), -127, 127) * step


def test_activation_outliers_per_tensor_per_token_and_outlier_dimensions(decoder):
    text = "The quick brown fox jumps over the lazy dog"
    result = decoder.activation_outliers(text, layer=15)
    with torch.no_grad():  # block 15's output is hidden_states[16] (hidden_states[0] is the embeddings)
        stream = decoder.model(**decoder.tokenizer(text, return_tensors="pt"), output_hidden_states=True)
    stream = stream.hidden_states[16][0].float()

    def errors(back):
        return ((back - stream).norm(dim=-1) / stream.norm(dim=-1)).tolist()

    rows = stream.abs().amax(-1, keepdim=True)
    assert result.error_all == pytest.approx(errors(_round_trip(stream, rows.max())), rel=1e-3, abs=1e-4)
    assert result.error_per_token == pytest.approx(errors(_round_trip(stream, rows)), rel=1e-3, abs=1e-4)
    ordinary = stream[1:].abs().amax(0)
    assert result.dimension_largest == pytest.approx(ordinary.tolist(), rel=1e-4)
    assert result.outlier_dims == ordinary.topk(2).indices.tolist() == [507, 247]
    kept = stream.clone()
    rest = [d for d in range(stream.shape[1]) if d not in (507, 247)]
    kept[:, rest] = _round_trip(stream[:, rest], stream[:, rest].abs().amax(-1, keepdim=True))
    assert result.error_dims_kept == pytest.approx(errors(kept), rel=1e-3, abs=1e-4)
    assert result.outlier == 0 and result.largest[0] > 10_000  # the attention sink of lesson 06
    figure = li.views.precision.outliers(result)
    assert [list(bar.y) for bar in figure.data] == [result.error_all, result.error_per_token, result.error_dims_kept]
    assert list(li.views.precision.dimensions(result).data[0].y) == result.dimension_largest
