"""Reading past the training length: RoPE position scaling and a sliding window's reach across layers.

A rotary model meets positions it never trained on when a text runs past its training length:
the slow pairs of dimensions turn to angles they never saw, and quality collapses — a formula
does not fail loudly, it extrapolates badly. Long-context models rescale positions instead:
*position interpolation* divides every angle by a factor, *NTK-aware* scaling raises θ, and
*YaRN* / Llama 3.1's scheme stretch only the slow pairs. ``rope_scaling`` asks transformers' own
``ROPE_INIT_FUNCTIONS`` for the scaled frequencies of a config and compares them with plain RoPE.

A sliding window of w keys lets a token see w − 1 tokens back in one layer; through the tokens
in between, information travels w − 1 further with every layer (``window_reach``).

Example:
    >>> window_reach(4096, 32)
    131040
    >>> scaled = rope_scaling(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
    ...                       original_max_position_embeddings=8192)
    >>> round(float(scaled.wavelengths_scaled.max() / scaled.wavelengths.max()))
    8
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from llminspect.errors import InputError


def window_reach(window: int, layers: int) -> int:
    """How many tokens back information can come from after ``layers`` sliding-window layers of ``window`` keys."""
    if window < 1 or layers < 0:
        raise InputError(f"window={window}, layers={layers}: a window holds at least one key; layers count from 0.")
    return layers * (window - 1)


@dataclass(frozen=True)
class RopeScaling:
    """Plain and scaled RoPE for one head size: each pair's wavelength (tokens for one full turn)."""

    rope_type: str
    parameters: dict
    wavelengths: torch.Tensor  # plain RoPE, [head_dim / 2]
    wavelengths_scaled: torch.Tensor
    trained_length: int


def rope_scaling(rope_type: str = "linear", theta: float = 500000.0, head_dim: int = 128,
                 **parameters) -> RopeScaling:  # fmt: skip
    """The wavelengths of plain RoPE and of transformers' ``rope_type`` scaling with ``parameters``.

    ``rope_type``: "linear" (position interpolation), "dynamic" (NTK), "yarn", "llama3" (Llama 3.1).
    """
    import transformers
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if rope_type not in ROPE_INIT_FUNCTIONS:
        raise InputError(f"rope_type={rope_type!r}: transformers knows {', '.join(sorted(ROPE_INIT_FUNCTIONS))}.")
    trained = int(parameters.get("original_max_position_embeddings", 8192))
    factor = float(parameters.get("factor", 8.0))
    rope = {"rope_type": rope_type, "rope_theta": theta, "factor": factor, **parameters}
    config = transformers.LlamaConfig(hidden_size=head_dim, num_attention_heads=1, rope_parameters=rope,
                                      max_position_embeddings=int(trained * factor))  # fmt: skip
    scaled, _ = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu")
    plain = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    return RopeScaling(rope_type, rope, 2 * math.pi / plain, 2 * math.pi / scaled.double(), trained)
