"""What rotary position embeddings (RoPE) do to queries and keys.

A model with RoPE adds no position vector to its embeddings. Instead, inside every attention
layer, each query and key is cut into pairs of numbers and each pair is turned by an angle
``position x frequency`` — fast-turning pairs for fine position, slow ones for coarse (Su et
al. 2021). Turning q by angle a and k by angle b changes their dot product only through
``a - b``, so attention scores depend on how far apart two tokens are, not where they sit.

transformers (Llama and friends) pairs dimension i with i + head_dim/2 (``rotate_half``), not
neighbouring dimensions; ``pair`` follows that layout.

Example:
    >>> import llminspect as li
    >>> rope = rotary(li.load("decoder"), "The quick brown fox")
    >>> tuple(rope.angles.shape), round(float(rope.frequencies[0]), 3)
    ((4, 32), 1.0)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from .errors import FamilyError


@dataclass
class Rotary:
    """One head's queries and keys before and after RoPE turned them, with the angles used."""

    tokens: list[str]
    layer: int
    head: int
    frequencies: torch.Tensor  # [head_dim / 2] radians per position, one per pair
    angles: torch.Tensor  # [tokens, head_dim / 2] = position x frequency
    query_before: torch.Tensor  # [tokens, head_dim]
    query_after: torch.Tensor
    key_before: torch.Tensor
    key_after: torch.Tensor

    def pair(self, index: int, which: str = "query") -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``index`` (dims i and i + head_dim/2) of every token, before and after: two [tokens, 2] tensors."""
        before, after = (self.query_before, self.query_after) if which == "query" else (self.key_before, self.key_after)
        half = before.shape[-1] // 2
        return before[:, [index, index + half]], after[:, [index, index + half]]

    def scores(self, rotated: bool = True) -> torch.Tensor:
        """Scaled dot products q·k/√d of this head, [query token, key token] (no mask, no softmax)."""
        q, k = (self.query_after, self.key_after) if rotated else (self.query_before, self.key_before)
        return q @ k.T / q.shape[-1] ** 0.5


def rotary(inspector, text: str, layer: int = 0, head: int = 0) -> Rotary:
    """Capture one head's q and k at ``layer`` as the model computes them, and turn them with the model's own RoPE."""
    attention = _rotary_attention(inspector, layer)
    tokens = inspector.checked_tokens(text)
    seen = {}

    def grab(module, args, kwargs):
        seen["hidden"] = kwargs.get("hidden_states", args[0] if args else None)
        seen["cos_sin"] = kwargs.get("position_embeddings")

    handle = attention.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            inspector.model(input_ids=torch.tensor([tokens.ids], device=inspector.device), use_cache=False)
    finally:
        handle.remove()
    hidden, (cos, sin) = seen["hidden"], seen["cos_sin"]
    width = attention.head_dim
    kv_head = head // (inspector.config.num_attention_heads // inspector.config.num_key_value_heads)
    with torch.no_grad():
        q = attention.q_proj(hidden).view(*hidden.shape[:-1], -1, width).transpose(1, 2)[:, head : head + 1]
        k = attention.k_proj(hidden).view(*hidden.shape[:-1], -1, width).transpose(1, 2)[:, kv_head : kv_head + 1]
        apply = sys.modules[type(attention).__module__].apply_rotary_pos_emb  # the model's own function
        q_after, k_after = apply(q, k, cos, sin)
    frequencies = _frequencies(inspector.model).float().cpu()
    positions = torch.arange(len(tokens), dtype=torch.float32)[:, None]

    def cpu(x):
        return x[0, 0].float().cpu()

    return Rotary(
        tokens.labels, layer, head, frequencies, positions * frequencies, cpu(q), cpu(q_after), cpu(k), cpu(k_after)
    )


def _frequencies(model) -> torch.Tensor:
    embedding = next(m for m in model.modules() if hasattr(m, "inv_freq"))
    return embedding.inv_freq


def _rotary_attention(inspector, layer: int):
    if not any(hasattr(m, "inv_freq") for m in inspector.model.modules()):
        raise FamilyError(
            f"{inspector.name} has no rotary position embeddings: its positions are added to the token vectors "
            "(see the 'positions' steps of m.walk(text)). RoPE is in Llama-like decoders such as li.load('decoder')."
        )
    layers = inspector.model.model.layers
    if not 0 <= layer < len(layers):
        raise IndexError(f"layer={layer}: {inspector.name} has layers 0 to {len(layers) - 1}.")
    return layers[layer].self_attn
