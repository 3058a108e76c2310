"""A rotary decoder's self-attention, written out: the step a learner most wants to see.

    q, k, v = h·W_q, h·W_k, h·W_v           (split into heads; Qwen 3, OLMo-2, Gemma 3 normalise q and k)
    q, k    = turned by RoPE                  (each pair (x_i, x_{i+d/2}) by position x frequency)
    scores  = q·kᵀ / √d                       (Gemma 2: soft-capped, cap · tanh(scores / cap))
    weights = softmax(scores + mask)          (the mask: 0 where allowed, the lowest float elsewhere)
    output  = (weights·v, heads joined) · W_o

With grouped-query attention several query heads read one key/value head. Every step is
recorded; ``walk_by_hand`` still proves the result equals the model's own forward pass.
"""

from __future__ import annotations

import torch

from llminspect.analysis.by_hand.recorder import Recorder


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[1, tokens, heads x d] -> [1, heads, tokens, d]."""
    return x.view(*x.shape[:-1], heads, -1).transpose(1, 2)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def _turn(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on the first ``cos.shape[-1]`` dimensions of each head (all of them in most models)."""
    width = cos.shape[-1]
    turned = x[..., :width] * cos[:, None] + _rotate_half(x[..., :width]) * sin[:, None]
    return torch.cat([turned, x[..., width:]], dim=-1)


def _projections(attention, h: torch.Tensor, heads: int, kv_heads: int, width: int):
    """q, k, v before splitting into heads (Phi-3 computes them with one fused matrix)."""
    if hasattr(attention, "qkv_proj"):
        fused = attention.qkv_proj(h)
        q_end, k_end = heads * width, (heads + kv_heads) * width
        return fused[..., :q_end], fused[..., q_end:k_end], fused[..., k_end:], "qkv_proj"
    return attention.q_proj(h), attention.k_proj(h), attention.v_proj(h), None


def _normalised(attention, q: torch.Tensor, k: torch.Tensor, heads: int, kv_heads: int):
    """Split into heads, applying q/k norms where the model has them (per head, or over the whole width)."""
    q_norm, k_norm = getattr(attention, "q_norm", None), getattr(attention, "k_norm", None)
    per_head = q_norm is not None and q_norm.weight.shape[0] == attention.head_dim
    if q_norm is not None and not per_head:  # OLMo-2: over the whole projection, then split
        q, k = q_norm(q), k_norm(k)
    q, k = _split(q, heads), _split(k, kv_heads)
    if per_head:  # Qwen 3, Gemma 3: each head's vector on its own
        q, k = q_norm(q.transpose(1, 2)).transpose(1, 2), k_norm(k.transpose(1, 2)).transpose(1, 2)
    return q, k


def attention_by_hand(step: Recorder, attention, h, cos_sin, mask, config, path: str) -> torch.Tensor:
    """Run ``attention`` (a Llama-style module) on ``h`` one operation at a time; return what ``o_proj`` gives."""
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    width = attention.head_dim
    q, k, v, fused = _projections(attention, h, heads, kv_heads, width)
    for name, value in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
        step(name, "attention", f"{path}.{fused or name}", value, h)
    q, k = _normalised(attention, q, k, heads, kv_heads)
    v = _split(v, kv_heads)
    cos, sin = cos_sin
    q = step("q turned by RoPE", "attention", "", _turn(q, cos, sin), q)
    k = step("k turned by RoPE", "attention", "", _turn(k, cos, sin), k)
    group = heads // kv_heads  # grouped-query attention: query head i reads key/value head i // group
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(2, 3) * attention.scaling
    cap = getattr(config, "attn_logit_softcapping", None)
    label = "scores q·kᵀ/√d" + (f", soft-capped at {cap:g}" if cap else "")
    scores = step(label, "attention", "", torch.tanh(scores / cap) * cap if cap else scores, q, k)
    weights = torch.softmax(scores + mask, dim=-1, dtype=torch.float32).to(q.dtype)
    step("attention weights: softmax(scores + mask)", "attention", "", weights, scores, mask)
    mixed = (weights @ v).transpose(1, 2).reshape(*h.shape[:-1], -1)
    step("weights·v, heads joined", "attention", "", mixed, weights, v)
    return attention.o_proj(mixed)
