"""Lesson 08: quantize one block of 32 weights to GGUF's Q8_0 and back, checked against the gguf package.

Q8_0 keeps one scale per block of 32 weights — the largest magnitude divided by 127, stored as a
float16 — and each weight as an 8-bit integer, the weight divided by the scale and rounded (half
away from zero, as ggml rounds). The referee is ``gguf.quants.quantize`` / ``dequantize`` on the
same numbers: a block of the decoder's weights, a block whose largest magnitude is negative, an
all-zero block, and values exactly halfway between two steps.

Example:
    >>> import torch
    >>> scale, q, back = q8_0(torch.linspace(-1, 1, 32))
    >>> q[0].item(), q[-1].item(), round(back[-1].item(), 3)
    (-127, 127, 1.0)
"""

from __future__ import annotations

import numpy as np
import torch

from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake


def q8_0(block):
    """32 weights -> (scale as GGUF stores it, the 32 int8 numbers, the weights they stand for)."""
    scale = block.abs().max() / 127
    steps = block / scale if scale > 0 else torch.zeros_like(block)  # an all-zero block: scale 0, every number 0
    q = (steps.sign() * (steps.abs() + 0.5).floor()).to(torch.int8)  # round half away from zero
    stored = scale.to(torch.float16)  # the file keeps the scale in 16 bits
    return stored.item(), q, stored.float() * q.float()


def gguf_q8_0(block: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """The same block through the gguf package (the referee): its stored scale, numbers and dequantized weights."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    packed = quantize(block.numpy().astype(np.float32), GGMLQuantizationType.Q8_0)
    scale = float(np.frombuffer(packed[:2].tobytes(), dtype=np.float16)[0])
    numbers = torch.from_numpy(np.frombuffer(packed[2:].tobytes(), dtype=np.int8).copy())
    return scale, numbers, torch.from_numpy(dequantize(packed, GGMLQuantizationType.Q8_0).copy())


def cases() -> list[Case]:
    weights = course_models.embedded("decoder").model.model.layers[3].mlp.down_proj.weight.detach()
    generator = torch.Generator().manual_seed(0)
    negative = torch.randn(32, generator=generator)
    negative[7] = -4 * negative.abs().max()
    halfway = torch.arange(32, dtype=torch.float32) - 15.5  # ± k + 0.5 steps once the scale is 1
    halfway[0] = -127.0
    blocks = [("the first 32 weights of block 3's MLP down-projection", weights.flatten()[:32].clone()),
              ("a block whose largest magnitude is negative", negative),
              ("an all-zero block", torch.zeros(32)),
              ("values exactly halfway between two steps", halfway)]  # fmt: skip
    return [Case(label, (block,), gguf_q8_0(block)) for label, block in blocks]


def _quantized(block, scale, rounding):
    steps = block / scale
    q = rounding(steps).to(torch.int8)
    stored = torch.as_tensor(scale).to(torch.float16)
    return stored.item(), q, stored.float() * q.float()


def _round_away(steps):
    return steps.sign() * (steps.abs() + 0.5).floor()


def _signed_max(block):
    return _quantized(block, block.max() / 127, _round_away)


def _by_128(block):
    return _quantized(block, block.abs().max() / 128, _round_away)


def _truncated(block):
    return _quantized(block, block.abs().max() / 127, torch.trunc)


def _half_to_even(block):
    return _quantized(block, block.abs().max() / 127, torch.round)


def _halves_up(block):
    return _quantized(block, block.abs().max() / 127, lambda steps: (steps + 0.5).floor())


def _unrounded_dequantized(block):
    scale = block.abs().max() / 127
    q = _round_away(block / scale).to(torch.int8)
    return scale.to(torch.float16).item(), q, scale * q.float()


def _float16_product(block):
    stored, q, _ = _quantized(block, block.abs().max() / 127, _round_away)
    return stored, q, torch.tensor(stored, dtype=torch.float16) * q.to(torch.float16)


def _float32_scale(block):
    scale = block.abs().max() / 127
    steps = block / scale if scale > 0 else torch.zeros_like(block)
    q = _round_away(steps).to(torch.int8)
    return scale.item(), q, scale * q.float()


EXERCISE = CodeExercise(
    "Quantize one block of 32 weights to Q8_0 and back: the scale (largest |weight| / 127, kept as float16), the "
    "32 int8 numbers (weight / scale, rounded half away from zero), and the weights they stand for. It is "
    "checked against the gguf package.",
    "q8_0(block) -> (scale, numbers, dequantized)", q8_0, cases,
    [Mistake("a scale from the largest weight, not the largest magnitude", "a block's most extreme weight can be "
             "negative: take the largest |weight|.", _signed_max),
     Mistake("dividing by 128", "an int8 reaches 127 on the positive side: the largest magnitude maps to 127.",
             _by_128),
     Mistake("truncating instead of rounding", "converting to int8 cuts the fraction off; round first.", _truncated),
     Mistake("rounding halves to even (torch.round)", "ggml rounds a value exactly halfway away from zero: "
             "2.5 becomes 3, −2.5 becomes −3.", _half_to_even),
     Mistake("rounding halves up", "−2.5 must become −3, as 2.5 becomes 3: round the magnitude, keep the sign.",
             _halves_up),
     Mistake("dequantizing with the unrounded scale", "a reader of the file has only the stored float16 scale: "
             "multiply by that.", _unrounded_dequantized),
     Mistake("multiplying in float16", "the product is taken in float32 (ggml turns the stored scale into "
             "float32 first).", _float16_product),
     Mistake("keeping the scale in float32", "the file stores the scale as a float16, and dequantizing uses "
             "that stored value.", _float32_scale)],
    "one float16 scale per 32 weights (their largest magnitude / 127) and an int8 per weight: 34 bytes for 32 "
    "weights, 8.5 bits each; dequantizing multiplies the stored scale back. Rounding half away from zero and the "
    "float16 scale are what make it bit-exact with ggml.",
    tolerance=1e-6, absolute=1e-12, parts=("the scale", "the numbers", "the dequantized weights"),
    hint="quantize torch.linspace(-1, 1, 32) by hand first: its ends must become -127 and 127.",
)  # fmt: skip
