"""Encoder-decoders by hand (BART, mBART, Marian, Pegasus, Whisper): pre- or post-norm blocks, learned or
sinusoidal position tables (BART's starts 2 rows in), cross-attention to the encoder's output.
"""

from __future__ import annotations

import torch

from llminspect.analysis.by_hand.recorder import Recorder, decoder_mask, first
from llminspect.analysis.steps import Step

SEQ2SEQ = {"bart": "post-norm", "marian": "post-norm", "mbart": "pre-norm", "pegasus": "pre-norm",
           "whisper": "pre-norm"}  # fmt: skip


def _position_rows(table, length: int, device) -> torch.Tensor:
    """Rows 0..length-1 of a position table; BART's learned table starts 2 rows in (its ``offset``)."""
    return table.weight[torch.arange(length, device=device) + getattr(table, "offset", 0)][None]


def _seq2seq_block(step: Recorder, layer, path: str, x, pre_norm: bool, mask=None, memory=None):
    """One encoder or decoder block: self-attention, cross-attention when ``memory`` is given, MLP."""
    parts = [("self_attn", "self-attention", "attention", "self_attn_layer_norm", mask)]
    if memory is not None:
        parts.append(("encoder_attn", "cross-attention", "cross-attention", "encoder_attn_layer_norm", None))
    for attribute, label, kind, norm_name, part_mask in parts:
        attention, norm = getattr(layer, attribute), getattr(layer, norm_name)
        h = step(norm_name, "norm", f"{path}.{norm_name}", norm(x), x) if pre_norm else x
        extra = {"key_value_states": memory} if attribute == "encoder_attn" else {}
        attended = step(label, kind, f"{path}.{attribute}", first(attention(h, attention_mask=part_mask, **extra)), h)
        x = step.add(x, attended, label, post_norm=not pre_norm)
        if not pre_norm:
            x = step(norm_name, "norm", f"{path}.{norm_name}", norm(x), x, stream=True)
    h = step("final_layer_norm", "norm", f"{path}.final_layer_norm", layer.final_layer_norm(x), x) if pre_norm else x
    up = step("fc1 + activation", "mlp", f"{path}.fc1", layer.activation_fn(layer.fc1(h)), h)
    x = step.add(x, step("fc2", "mlp", f"{path}.fc2", layer.fc2(up), up), "MLP", post_norm=not pre_norm)
    if not pre_norm:
        x = step("final_layer_norm", "norm", f"{path}.final_layer_norm", layer.final_layer_norm(x), x, stream=True)
    return x


def _embed_text(step: Recorder, stack, path: str, ids):
    """Token vectors (scaled where the model scales them) plus position rows, then the embedding LayerNorm if any."""
    scale = getattr(stack, "embed_scale", 1.0)
    label = "embed_tokens" + (f" × {scale:.3g}" if scale != 1.0 else "")
    x = step(label, "embedding", f"{path}.embed_tokens", stack.embed_tokens(ids) * scale, ids)
    kind = "sinusoidal" if "Sinusoidal" in type(stack.embed_positions).__name__ else "learned"
    x = x + step(f"embed_positions ({kind})", "positions", f"{path}.embed_positions",
                 _position_rows(stack.embed_positions, ids.shape[1], ids.device))  # fmt: skip
    if getattr(stack, "layernorm_embedding", None) is not None:
        x = step("layernorm_embedding", "norm", f"{path}.layernorm_embedding", stack.layernorm_embedding(x), x)
    return x


def _end_of_stack(step: Recorder, stack, path: str, x):
    if getattr(stack, "layer_norm", None) is not None:  # pre-norm stacks end with one more LayerNorm
        x = step("layer_norm", "norm", f"{path}.layer_norm", stack.layer_norm(x), x)
    return x


def seq2seq(model, inputs: dict) -> tuple[list[Step], torch.Tensor]:
    pre_norm = SEQ2SEQ[model.config.model_type] == "pre-norm"
    encoder, decoder = model.get_encoder(), model.get_decoder()
    where = {"encoder": "model.encoder", "decoder": "model.decoder"}
    step = Recorder("encoder")
    if "input_features" in inputs:  # Whisper hears audio: two convolutions, then sinusoidal positions
        features = inputs["input_features"]
        x = step("conv1 + GELU", "embedding", "model.encoder.conv1",
                 torch.nn.functional.gelu(encoder.conv1(features)), features)  # fmt: skip
        x = step("conv2 + GELU", "embedding", "model.encoder.conv2", torch.nn.functional.gelu(encoder.conv2(x)), x)
        x = x.permute(0, 2, 1)
        x = x + step("embed_positions (sinusoidal)", "positions", "model.encoder.embed_positions",
                     _position_rows(encoder.embed_positions, x.shape[1], x.device))  # fmt: skip
    else:
        x = _embed_text(step, encoder, where["encoder"], inputs["input_ids"])
    step("input to the blocks", "residual", "", x, stream=True)
    for index, layer in enumerate(encoder.layers):
        step.layer = index
        x = _seq2seq_block(step, layer, f"{where['encoder']}.layers.{index}", x, pre_norm)
    step.layer = None
    memory, steps = _end_of_stack(step, encoder, where["encoder"], x), step.steps

    step = Recorder("decoder")
    ids = inputs["decoder_input_ids"]
    y = _embed_text(step, decoder, where["decoder"], ids)
    step("input to the blocks", "residual", "", y, stream=True)
    mask = decoder_mask(ids.shape[1], y.dtype, y.device)
    for index, layer in enumerate(decoder.layers):
        step.layer = index
        y = _seq2seq_block(step, layer, f"{where['decoder']}.layers.{index}", y, pre_norm, mask, memory)
    step.layer = None
    y = _end_of_stack(step, decoder, where["decoder"], y)
    head = model.get_output_embeddings()
    logits = head(y) + getattr(model, "final_logits_bias", 0)
    step.stack = None
    head_name = next(name for name, module in model.named_children() if module is head)
    step(head_name + (" + final_logits_bias" if hasattr(model, "final_logits_bias") else ""), "head", head_name,
         logits, y)  # fmt: skip
    return steps + step.steps, logits
