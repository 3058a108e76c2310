"""The forward pass by hand: each embedded family's architecture, one sub-module call at a time.

The book this project grew from walks OPT by calling ``embed_tokens``, ``embed_positions`` and
``layers[0].self_attn`` itself — but calls the attention without a mask, so every token sees
the future. Here each recipe passes what the model's own ``forward`` would: the causal mask
(and the sliding window when the config has one) as the additive mask eager attention adds to
its scores, the rotary cos/sin, the learned or fixed position vectors, the encoder's output for
cross-attention. Residual adds are written out, so a learner sees where the stream is summed.

Recipes, picked by the config's ``model_type`` (never by name):
- Llama-like decoders (Llama, Mistral, Qwen2, SmolLM2): pre-norm blocks with rotary positions.
- BERT-like encoders: learned positions, post-norm blocks (add, then LayerNorm).
- BART and Whisper encoder-decoders: BART is post-norm with learned positions; Whisper is
  pre-norm, reads audio through two convolutions, and ends each stack with a LayerNorm.

``tests/test_walk.py`` proves that every recipe ends on the full forward pass's last hidden
state and logits (the way minGPT's test proves its GPT equals Hugging Face's).

Example:
    >>> import llminspect as li
    >>> walk = li.load("encoder").walk("The quick brown fox", how="by hand")
    >>> [s.name for s in walk.find(layer=0)][:3]
    ['layer 0 · self-attention', 'layer 0 · attention output projection', 'layer 0 · residual add (attention)']
"""

from __future__ import annotations

import torch

from .errors import FamilyError
from .walk import Step, batchless

LLAMA_LIKE = {"llama", "mistral", "qwen2", "qwen3", "olmo2"}
BERT_LIKE = {"bert", "roberta", "xlm-roberta"}
SEQ2SEQ = {"bart": "post-norm", "whisper": "pre-norm"}


def causal_mask(length: int, dtype: torch.dtype, device, window: int | None = None) -> torch.Tensor:
    """The additive mask eager attention adds to its scores: 0 where query i may see key j, -inf-like elsewhere.

    Query i sees keys j <= i, and with a sliding window of w only i - w < j <= i (w keys).

    Example:
        >>> causal_mask(3, torch.float32, "cpu")[0, 0].eq(0).int().tolist()
        [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    i = torch.arange(length, device=device)[:, None]
    j = torch.arange(length, device=device)[None, :]
    allowed = j <= i
    if window is not None:
        allowed &= j > i - window
    mask = torch.zeros(length, length, dtype=dtype, device=device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


class _Recorder:
    """Collects steps as a recipe runs; ``add`` also records the residual add it names."""

    def __init__(self, stack: str | None = None) -> None:
        self.steps: list[Step] = []
        self.stack = stack
        self.layer: int | None = None

    def __call__(self, label: str, kind: str, module: str, output, *inputs, stream: bool = False, added=None):
        name = f"layer {self.layer} · {label}" if self.layer is not None else label
        name = f"{self.stack} {name}" if self.stack else name
        shapes = [tuple(x.shape) for x in inputs if isinstance(x, torch.Tensor)]
        step = Step(name, kind, module, batchless(output), shapes, self.layer, self.stack, batchless(added), stream)
        self.steps.append(step)
        return output

    def add(self, stream: torch.Tensor, sub_layer: torch.Tensor, what: str, post_norm: bool = False):
        total = stream + sub_layer
        self(f"residual add ({what})", "residual", "", total, stream, sub_layer, stream=not post_norm, added=sub_layer)
        return total


def _llama(model, inputs: dict) -> tuple[list[Step], torch.Tensor]:
    body, config, step = model.model, model.config, _Recorder()
    ids = inputs["input_ids"]
    x = step("embed_tokens", "embedding", "model.embed_tokens", body.embed_tokens(ids), ids, stream=True)
    positions = torch.arange(ids.shape[1], device=ids.device)[None]
    cos, sin = body.rotary_emb(x, position_ids=positions)
    step("rotary_emb (cos)", "positions", "model.rotary_emb", cos, positions)
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    mask = causal_mask(ids.shape[1], x.dtype, x.device, window)
    for index, layer in enumerate(body.layers):
        step.layer, path = index, f"model.layers.{index}"
        h = step("input_layernorm", "norm", f"{path}.input_layernorm", layer.input_layernorm(x), x)
        attended, _ = layer.self_attn(h, position_embeddings=(cos, sin), attention_mask=mask)
        step("self-attention", "attention", f"{path}.self_attn", attended, h, mask)
        x = step.add(x, attended, "attention")
        h = step("post_attention_layernorm", "norm", f"{path}.post_attention_layernorm",
                 layer.post_attention_layernorm(x), x)  # fmt: skip
        x = step.add(x, step("mlp", "mlp", f"{path}.mlp", layer.mlp(h), h), "MLP")
    step.layer = None
    x = step("final norm", "norm", "model.norm", body.norm(x), x)
    return step.steps, step("lm_head", "head", "lm_head", model.lm_head(x), x)


def _bert(model, inputs: dict) -> tuple[list[Step], torch.Tensor | None]:
    embeddings, step = model.embeddings, _Recorder()
    ids = inputs["input_ids"]
    positions = torch.arange(ids.shape[1], device=ids.device)[None]
    words = step("word_embeddings", "embedding", "embeddings.word_embeddings", embeddings.word_embeddings(ids), ids)
    where = step("position_embeddings", "positions", "embeddings.position_embeddings",
                 embeddings.position_embeddings(positions), positions)  # fmt: skip
    segment = embeddings.token_type_embeddings(torch.zeros_like(ids))
    step("token_type_embeddings", "embedding", "embeddings.token_type_embeddings", segment, ids)
    summed = step("sum of the three", "residual", "", words + where + segment, words, where, segment)
    x = step("embeddings LayerNorm", "norm", "embeddings.LayerNorm", embeddings.LayerNorm(summed), summed, stream=True)
    mask = torch.zeros(1, 1, ids.shape[1], ids.shape[1], dtype=x.dtype, device=x.device)  # one text: no padding
    for index, layer in enumerate(model.encoder.layer):
        step.layer, path = index, f"encoder.layer.{index}"
        mixed = layer.attention.self(x, attention_mask=mask)[0]
        step("self-attention", "attention", f"{path}.attention.self", mixed, x, mask)
        projected = layer.attention.output.dense(mixed)
        step("attention output projection", "attention", f"{path}.attention.output.dense", projected, mixed)
        summed = step.add(x, projected, "attention", post_norm=True)
        x = step("LayerNorm", "norm", f"{path}.attention.output.LayerNorm",
                 layer.attention.output.LayerNorm(summed), summed, stream=True)  # fmt: skip
        hidden = step("MLP up + GELU", "mlp", f"{path}.intermediate", layer.intermediate(x), x)
        down = step("MLP down", "mlp", f"{path}.output.dense", layer.output.dense(hidden), hidden)
        summed = step.add(x, down, "MLP", post_norm=True)
        x = step("LayerNorm", "norm", f"{path}.output.LayerNorm", layer.output.LayerNorm(summed), summed, stream=True)
    return step.steps, None


def _seq2seq_block(step: _Recorder, layer, path: str, x, pre_norm: bool, mask=None, memory=None):
    """One BART/Whisper block: self-attention, cross-attention when ``memory`` is given, MLP."""
    parts = [("self_attn", "self-attention", "attention", "self_attn_layer_norm", mask)]
    if memory is not None:
        parts.append(("encoder_attn", "cross-attention", "cross-attention", "encoder_attn_layer_norm", None))
    for attribute, label, kind, norm_name, part_mask in parts:
        attention, norm = getattr(layer, attribute), getattr(layer, norm_name)
        h = step(norm_name, "norm", f"{path}.{norm_name}", norm(x), x) if pre_norm else x
        extra = {"key_value_states": memory} if attribute == "encoder_attn" else {}
        attended = step(label, kind, f"{path}.{attribute}", attention(h, attention_mask=part_mask, **extra)[0], h)
        x = step.add(x, attended, label, post_norm=not pre_norm)
        if not pre_norm:
            x = step(norm_name, "norm", f"{path}.{norm_name}", norm(x), x, stream=True)
    h = step("final_layer_norm", "norm", f"{path}.final_layer_norm", layer.final_layer_norm(x), x) if pre_norm else x
    up = step("fc1 + activation", "mlp", f"{path}.fc1", layer.activation_fn(layer.fc1(h)), h)
    x = step.add(x, step("fc2", "mlp", f"{path}.fc2", layer.fc2(up), up), "MLP", post_norm=not pre_norm)
    if not pre_norm:
        x = step("final_layer_norm", "norm", f"{path}.final_layer_norm", layer.final_layer_norm(x), x, stream=True)
    return x


def _seq2seq(model, inputs: dict) -> tuple[list[Step], torch.Tensor]:
    whisper = model.config.model_type == "whisper"
    pre_norm = SEQ2SEQ[model.config.model_type] == "pre-norm"
    encoder, decoder = model.model.encoder, model.model.decoder
    step = _Recorder("encoder")
    if whisper:
        features = inputs["input_features"]
        x = step("conv1 + GELU", "embedding", "model.encoder.conv1",
                 torch.nn.functional.gelu(encoder.conv1(features)), features)  # fmt: skip
        x = step("conv2 + GELU", "embedding", "model.encoder.conv2", torch.nn.functional.gelu(encoder.conv2(x)), x)
        x = x.permute(0, 2, 1)
        where = encoder.embed_positions(torch.arange(encoder.embed_positions.num_embeddings, device=x.device))
        x = x + step("embed_positions (sinusoidal)", "positions", "model.encoder.embed_positions", where)
    else:
        ids = inputs["input_ids"]
        x = step("embed_tokens (scaled)", "embedding", "model.encoder.embed_tokens", encoder.embed_tokens(ids), ids)
        x = x + step("embed_positions (learned)", "positions", "model.encoder.embed_positions",
                     encoder.embed_positions(ids), ids)  # fmt: skip
        x = encoder.layernorm_embedding(x)
    step("input to the blocks", "residual", "", x, stream=True)
    for index, layer in enumerate(encoder.layers):
        step.layer = index
        x = _seq2seq_block(step, layer, f"model.encoder.layers.{index}", x, pre_norm)
    step.layer = None
    if whisper:
        x = step("layer_norm", "norm", "model.encoder.layer_norm", encoder.layer_norm(x), x)
    memory, steps = x, step.steps

    step = _Recorder("decoder")
    ids = inputs["decoder_input_ids"]
    y = step("embed_tokens", "embedding", "model.decoder.embed_tokens", decoder.embed_tokens(ids), ids)
    y = y + step("embed_positions (learned)", "positions", "model.decoder.embed_positions",
                 decoder.embed_positions(ids), ids)  # fmt: skip
    if not whisper:
        y = decoder.layernorm_embedding(y)
    step("input to the blocks", "residual", "", y, stream=True)
    mask = causal_mask(ids.shape[1], y.dtype, y.device)
    for index, layer in enumerate(decoder.layers):
        step.layer = index
        y = _seq2seq_block(step, layer, f"model.decoder.layers.{index}", y, pre_norm, mask, memory)
    step.layer = None
    if whisper:
        y = step("layer_norm", "norm", "model.decoder.layer_norm", decoder.layer_norm(y), y)
    head = model.get_output_embeddings()
    logits = head(y) + getattr(model, "final_logits_bias", 0)
    step.stack = None
    step("lm_head", "head", "proj_out" if whisper else "lm_head", logits, y)
    return steps + step.steps, logits


def walk_by_hand(model, inputs: dict) -> tuple[list[Step], torch.Tensor | None]:
    """Run ``model`` on ``inputs`` one sub-module at a time; return the steps and the logits [tokens, vocab]."""
    kind = model.config.model_type
    if hasattr(model, "hf_device_map"):
        raise FamilyError(
            "The by-hand walk calls each sub-module itself, which skips the hooks that bring offloaded "
            "weights in: use how='hooks' for a model loaded with offload= or device_map=."
        )
    if kind in LLAMA_LIKE:
        recipe = _llama
    elif kind in BERT_LIKE and hasattr(model, "embeddings"):
        recipe = _bert
    elif kind in SEQ2SEQ:
        recipe = _seq2seq
    else:
        raise FamilyError(
            f"The by-hand walk knows Llama-like decoders, BERT-like encoders, BART and Whisper; this model "
            f"is {kind!r}. Use how='hooks', which records any architecture's own modules."
        )
    with torch.no_grad():
        steps, logits = recipe(model, inputs)
    return steps, batchless(logits)
