"""What precision does: one weight matrix, the whole model's next-token guesses, and activation outliers.

Formats: torch's own dtypes (float32, bfloat16, float16) and GGUF's block formats through the
``gguf`` package's own ``quantize`` / ``dequantize`` — Q8_0 (blocks of 32 weights, one float16
scale, 8.5 bits a weight) and Q4_0 (4.5 bits). The embedded decoder *ships* as Q4_1 blocks (4
bits + a float16 scale and minimum per 32 weights = 5 bits) and is expanded to float32 when
prepared: its float32 weights are exactly the de-quantized 4-bit ones, so every error below is
measured against that float32 model, not against the original training weights.

Weight-only quantization keeps activations in float; activations are harder: a few *massive
activations* (lesson 06's attention sink) set the scale of an 8-bit grid for everything else.

Example:
    >>> import torch
    >>> [p.name for p in matrix_precisions(torch.randn(8, 64)).rows]
    ['float32', 'bfloat16', 'float16', 'Q8_0', 'Q4_0']
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import check_layer, run
from llminspect.errors import InputError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BLOCKS = ("Q8_0", "Q4_0")
PRECISIONS = (*DTYPES, *BLOCKS)


def round_trip(weight: torch.Tensor, precision: str) -> tuple[torch.Tensor, int]:
    """``weight`` stored at ``precision`` and read back as float32, and the bytes it took."""
    if precision in DTYPES:
        stored = weight.to(DTYPES[precision])
        return stored.float(), stored.element_size() * stored.numel()
    if precision not in BLOCKS:
        raise InputError(f"precision={precision!r}: choose from {', '.join(PRECISIONS)}.")
    from gguf import GGMLQuantizationType, quants

    kind = GGMLQuantizationType[precision]
    if weight.shape[-1] % 32:
        raise InputError(f"GGUF blocks hold 32 weights; a row of {weight.shape[-1]} does not split into them.")
    packed = quants.quantize(weight.detach().float().numpy(), kind)
    return torch.from_numpy(quants.dequantize(packed, kind)).reshape(weight.shape), int(packed.nbytes)


@dataclass(frozen=True)
class StoredMatrix:
    """One precision of one matrix: its size and how far it lands from float32."""

    name: str
    bytes: int
    bits_per_weight: float
    largest_error: float
    rms_error: float
    errors: torch.Tensor  # a sample of (value − float32), for a histogram


@dataclass(frozen=True)
class MatrixPrecisions:
    shape: tuple[int, ...]
    rows: list[StoredMatrix]
    shipped: StoredMatrix | None = None  # the file's own blocks (the embedded decoder's Q4_1), when known


def _stored(name: str, weight: torch.Tensor, back: torch.Tensor, size: int, sample: torch.Tensor) -> StoredMatrix:
    error = (back - weight.float()).flatten()
    return StoredMatrix(name, size, 8 * size / weight.numel(), float(error.abs().max()),
                        float(error.pow(2).mean().sqrt()), error[sample])  # fmt: skip


def matrix_precisions(weight: torch.Tensor, shipped: tuple[str, torch.Tensor, int] | None = None) -> MatrixPrecisions:
    """``weight`` at every precision; ``shipped``: (format, de-quantized values, bytes) if it came quantized."""
    weight = weight.detach().float()
    sample = torch.randperm(weight.numel(), generator=torch.Generator().manual_seed(0))[:20_000]
    rows = [_stored(p, weight, *round_trip(weight, p), sample) for p in PRECISIONS]
    found = None
    if shipped is not None:
        found = _stored(shipped[0], weight, shipped[1].reshape(weight.shape), shipped[2], sample)
    return MatrixPrecisions(tuple(weight.shape), rows, found)


def shipped_matrix(gguf_path, tensor: str) -> tuple[str, torch.Tensor, int]:
    """A tensor as the GGUF file stores it: (its format, its values de-quantized by ``gguf``, its bytes)."""
    from gguf import GGUFReader, quants

    found = [t for t in GGUFReader(str(gguf_path)).tensors if t.name == tensor]
    if not found:
        raise InputError(f"{gguf_path} has no tensor {tensor!r}.")
    raw = found[0]
    values = torch.from_numpy(quants.dequantize(raw.data, raw.tensor_type).copy())
    return raw.tensor_type.name, values, int(raw.n_bytes)


@dataclass(frozen=True)
class PrecisionEffect:
    """The whole model with every block matrix at one precision, against float32."""

    name: str
    weight_bytes: int  # the blocks' matrices at this precision
    kl: float  # mean KL(float32 ‖ this precision) of the next-token distributions, in bits
    agreement: float  # share of positions whose top token is float32's


def _copy_at(model, precision: str):
    if precision in DTYPES:
        return copy.deepcopy(model).to(DTYPES[precision]), None
    changed, size = copy.deepcopy(model), 0
    with torch.no_grad():
        for name, parameter in changed.named_parameters():
            if parameter.dim() == 2 and ".layers." in f".{name}":
                back, stored = round_trip(parameter, precision)
                parameter.copy_(back)
                size += stored
    return changed, size


def precision_effects(m, texts: list[Inputs]) -> list[PrecisionEffect]:
    """Next-token distributions at every position of ``texts`` with the model at each precision (CPU)."""
    m.require_decoder("Comparing precisions")
    if isinstance(texts, Inputs) or not texts:
        raise InputError("Precision effects need a list of texts' inputs, e.g. [m.inputs('The cat sat.')].")
    if m.device.type != "cpu" or m.offloaded:
        raise InputError("Precision effects copy the whole model on the CPU; load it with device='cpu', no offload.")
    blocks = [p for n, p in m.model.named_parameters() if p.dim() == 2 and ".layers." in f".{n}"]

    def distributions(model) -> list[torch.Tensor]:
        with torch.no_grad():
            return [model(**t.tensors).logits[0].double().log_softmax(-1) for t in texts]

    reference, found = distributions(m.model), []
    for precision in PRECISIONS:
        if precision == "float32":  # the model as loaded: no copy, no second run
            ours, size = reference, None
        else:
            model, size = _copy_at(m.model, precision)
            ours = distributions(model)
            del model
        if size is None:
            size = sum(p.numel() for p in blocks) * DTYPES[precision].itemsize
        kl = torch.cat([(r.exp() * (r - o)).sum(-1) for r, o in zip(reference, ours, strict=True)])
        same = torch.cat([r.argmax(-1) == o.argmax(-1) for r, o in zip(reference, ours, strict=True)])
        found.append(PrecisionEffect(precision, size, float(kl.mean()) / math.log(2), float(same.double().mean())))
    return found


@dataclass(frozen=True)
class ActivationOutliers:
    """8-bit round trips of the residual stream after one block: one scale for the whole tensor, one scale per
    token, and one per token with the outlier *feature dimensions* kept in 16 bits (LLM.int8()'s idea)."""

    tokens: list[str]
    layer: int  # the stream after block ``layer`` (site ``layer.{layer}.output``; hidden_states[layer + 1])
    largest: list[float]  # each token's largest |activation|
    outlier: int  # the token with the largest value of all (the attention sink)
    error_all: list[float]  # each token's relative error, one scale for the whole tensor
    error_per_token: list[float]  # ... one scale per token (its own largest |value| / 127)
    error_dims_kept: list[float]  # ... one scale per token over the other dimensions, ``outlier_dims`` kept exact
    dimension_largest: list[float]  # each feature dimension's largest |value| over the tokens but ``outlier``
    outlier_dims: list[int]  # the ``dims`` dimensions with the largest of those


def _int8_round_trip(x: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """Each row of ``x`` rounded onto 255 steps of its ``absmax`` / 127 and back (absmax: one per row, or one)."""
    scale = (absmax.float() / 127).clamp_min(torch.finfo(torch.float32).tiny).expand(x.shape[0]).contiguous()
    return torch.fake_quantize_per_channel_affine(
        x.float(), scale, torch.zeros(x.shape[0], dtype=torch.int32), 0, -127, 127
    )


def activation_outliers(m, inputs: Inputs, layer: int, dims: int = 2) -> ActivationOutliers:
    """What one huge token and a few huge feature dimensions do to an 8-bit grid for block ``layer``'s output."""
    layer, dims = check_layer(m, layer), whole_number(dims, "dims")
    name = f"layer.{layer}.output"
    stream = run(m, inputs, keep=[name])[name][0].float().cpu()
    largest = stream.abs().amax(-1)
    outlier = int(largest.argmax())
    ordinary = [i for i in range(len(largest)) if i != outlier]
    dimension_largest = stream[ordinary].abs().amax(0)
    outlier_dims = dimension_largest.topk(min(dims, stream.shape[1] - 1)).indices
    rest = torch.ones(stream.shape[1], dtype=torch.bool)
    rest[outlier_dims] = False
    kept = stream.clone()
    kept[:, rest] = _int8_round_trip(stream[:, rest], stream[:, rest].abs().amax(-1))

    def relative(back: torch.Tensor) -> list[float]:
        return ((back - stream).norm(dim=-1) / stream.norm(dim=-1)).tolist()

    return ActivationOutliers(
        inputs.tokens.labels, layer, largest.tolist(), outlier,
        relative(_int8_round_trip(stream, largest.max()[None])), relative(_int8_round_trip(stream, largest)),
        relative(kept), dimension_largest.tolist(), outlier_dims.tolist(),
    )  # fmt: skip
