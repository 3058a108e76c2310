"""Rotary decoders by hand (Llama, Mistral, Mixtral, Qwen2/3 and their MoE, Phi-3, Gemma 1-3, OLMo-2).

Three block layouts — pre-norm (norm, sub-layer, add), post-norm (OLMo-2: sub-layer, norm, add)
and sandwich (Gemma 2/3: norm, sub-layer, norm, add) — with each layer's mask from its type
(full, or a sliding window), Gemma 3's per-type RoPE tables and Gemma 2's final soft-capping.
The attention is written out: q, k, v projections, RoPE, q·kᵀ/√d, the mask, softmax, ·V, o_proj.
"""

from __future__ import annotations

import inspect

import torch

from llminspect.analysis.by_hand.attention import attention_by_hand
from llminspect.analysis.by_hand.recorder import HOOKS, Recorder, decoder_mask, first
from llminspect.analysis.steps import Step
from llminspect.errors import FamilyError

MASKS = ("full_attention", "sliding_attention")


def _decoder_layout(layer) -> str:
    """Where a rotary decoder block puts its norms: "pre-norm", "post-norm" or "sandwich"."""
    has = {name for name, _ in layer.named_children()}
    if not {"self_attn"} <= has or not has & {"mlp", "block_sparse_moe"}:
        raise FamilyError(f"{type(layer).__name__} has no self_attn and mlp: the by-hand recipe does not fit. {HOOKS}")
    sandwich = {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                "post_feedforward_layernorm"}  # fmt: skip
    if sandwich <= has:
        return "sandwich"
    if {"post_attention_layernorm", "post_feedforward_layernorm"} <= has and "input_layernorm" not in has:
        return "post-norm"
    if {"input_layernorm", "post_attention_layernorm"} <= has and not has & {"pre_feedforward_layernorm"}:
        return "pre-norm"
    raise FamilyError(
        f"{type(layer).__name__} places its norms in a way the by-hand recipe does not know "
        f"({', '.join(sorted(n for n in has if 'norm' in n))}). {HOOKS}"
    )


def _layer_masks(config, length: int, dtype, device) -> list[tuple[str, torch.Tensor]]:
    """Each layer's attention type and mask: full causal, or causal within a sliding window."""
    if getattr(config, "use_bidirectional_attention", False):
        raise FamilyError(f"This {config.model_type} attends in both directions; the by-hand recipe is causal. {HOOKS}")
    window = getattr(config, "sliding_window", None)
    types = (
        getattr(config, "layer_types", None)
        or ["sliding_attention" if window else "full_attention"] * config.num_hidden_layers
    )
    unknown = set(types) - set(MASKS)
    if unknown:
        raise FamilyError(f"Layers of type {sorted(unknown)} need masks the by-hand recipe does not build. {HOOKS}")
    masks = {kind: decoder_mask(length, dtype, device, window if kind == "sliding_attention" else None)
             for kind in set(types)}  # fmt: skip
    return [(kind, masks[kind]) for kind in types]


def _rotary(body, x, positions, kind: str):
    """cos and sin of the rotary embedding (Gemma 3 keeps one table per attention type)."""
    if "layer_type" in inspect.signature(body.rotary_emb.forward).parameters:
        return body.rotary_emb(x, positions, kind)
    return body.rotary_emb(x, position_ids=positions)


def rotary_decoder(model, inputs: dict) -> tuple[list[Step], torch.Tensor | None]:
    body, step = model.base_model, Recorder()
    config = model.config.get_text_config()
    if not all(hasattr(body, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")):
        raise FamilyError(f"{type(body).__name__} is not laid out like Llama (embed_tokens, layers, norm). {HOOKS}")
    layout = _decoder_layout(body.layers[0])
    ids = inputs["input_ids"]
    scaled = " (× √hidden inside)" if hasattr(body.embed_tokens, "embed_scale") else ""
    prefix = "" if body is model else next(f"{n}." for n, m in model.named_children() if m is body)
    x = step(f"embed_tokens{scaled}", "embedding", f"{prefix}embed_tokens", body.embed_tokens(ids), ids, stream=True)
    positions = torch.arange(ids.shape[1], device=ids.device)[None]
    masks = _layer_masks(config, ids.shape[1], x.dtype, x.device)
    rope = {}
    for kind in dict(masks):
        rope[kind] = _rotary(body, x, positions, kind)
        label = "rotary_emb (cos)" if len(rope) == 1 else f"rotary_emb (cos, {kind})"
        step(label, "positions", f"{prefix}rotary_emb", rope[kind][0], positions)
    for index, (layer, (kind, mask)) in enumerate(zip(body.layers, masks, strict=True)):
        step.layer, path = index, f"{prefix}layers.{index}"

        def norm(name, value, path=path, layer=layer):
            return step(name, "norm", f"{path}.{name}", getattr(layer, name)(value), value)

        h = x if layout == "post-norm" else norm("input_layernorm", x)
        attention = layer.self_attn
        if hasattr(attention, "o_proj") and (hasattr(attention, "q_proj") or hasattr(attention, "qkv_proj")):
            attended = attention_by_hand(step, attention, h, rope[kind], mask, config, f"{path}.self_attn")
        else:  # an attention module laid out otherwise: called whole (the proof still checks the result)
            attended = first(attention(h, position_embeddings=rope[kind], attention_mask=mask))
        step("self-attention" + (" (sliding window)" if kind == "sliding_attention" else ""), "attention",
             f"{path}.self_attn", attended, h)  # fmt: skip
        if layout != "pre-norm":
            attended = norm("post_attention_layernorm", attended)
        x = step.add(x, attended, "attention")
        if layout == "post-norm":
            h = x
        else:
            h = norm("post_attention_layernorm" if layout == "pre-norm" else "pre_feedforward_layernorm", x)
        mlp_name = "mlp" if hasattr(layer, "mlp") else "block_sparse_moe"
        fed = step(mlp_name, "mlp", f"{path}.{mlp_name}", first(getattr(layer, mlp_name)(h)), h)
        if layout != "pre-norm":
            fed = norm("post_feedforward_layernorm", fed)
        x = step.add(x, fed, "MLP")
    step.layer = None
    x = step("final norm", "norm", f"{prefix}norm", body.norm(x), x)
    head = model.get_output_embeddings()
    if head is None or body is model:
        return step.steps, None
    logits = step("lm_head", "head", "lm_head", head(x), x)
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = step(f"final logit soft-capping: {cap:g} · tanh(logits / {cap:g})", "head", "",
                      torch.tanh(logits / cap) * cap, logits)  # fmt: skip
    return step.steps, logits
