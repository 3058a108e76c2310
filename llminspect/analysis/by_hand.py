"""The forward pass by hand: one sub-module call at a time, residual adds written out.

The book this project grew from walks OPT by calling ``embed_tokens``, ``embed_positions`` and
``layers[0].self_attn`` itself — but calls the attention without a mask, so every token sees
the future. Here each recipe passes what the model's own ``forward`` would: the causal mask
(and, per layer, the sliding window) as the additive mask eager attention adds to its scores,
the rotary cos/sin, the position vectors, the encoder's output for cross-attention. Residual
adds are written out, so a learner sees where the stream is summed.

Recipes, chosen by the model's structure (never by its name):
- rotary decoders (Llama, Mistral, Mixtral, Qwen2/3 and their MoE, Phi-3, Gemma 1-3, OLMo-2):
  three block layouts — pre-norm (norm, sub-layer, add), post-norm (OLMo-2: sub-layer, norm,
  add) and sandwich (Gemma 2/3: norm, sub-layer, norm, add) — with Gemma's final soft-capping;
- BERT-like encoders (BERT, RoBERTa, ELECTRA): post-norm, learned positions (RoBERTa counts
  them from the padding index + 1), the pooler or the masked-LM head when the model has one;
- encoder-decoders BART, mBART, Marian, Pegasus and Whisper: pre- or post-norm blocks, learned
  or sinusoidal position tables, cross-attention.

A by-hand walk claims to *be* the forward pass, so it proves it every time: it runs the model's
own forward on the same input and refuses (``FamilyError``) when the two do not end on the same
hidden state and output. Other architectures get a clear refusal naming ``how='hooks'``.

Example:
    >>> import llminspect as li
    >>> walk = li.load("encoder").walk("The quick brown fox", how="by hand")
    >>> [s.name for s in walk.find(layer=0)][:3]
    ['layer 0 · self-attention', 'layer 0 · attention output projection', 'layer 0 · residual add (attention)']
"""

from __future__ import annotations

import inspect

import torch

from llminspect.analysis.walk import Step, batchless, final_hidden_state, model_output
from llminspect.errors import FamilyError

BERT_LIKE = {"bert", "roberta", "xlm-roberta", "camembert", "electra"}
SEQ2SEQ = {"bart": "post-norm", "marian": "post-norm", "mbart": "pre-norm", "pegasus": "pre-norm",
           "whisper": "pre-norm"}  # fmt: skip
MASKS = ("full_attention", "sliding_attention")
HOOKS = "Use how='hooks', which records any architecture's own modules."


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


def _first(value):
    """A module's main output: some return a tuple (output, attention weights or router logits)."""
    return value[0] if isinstance(value, tuple) else value


# --- rotary decoders ------------------------------------------------------------------------------


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
    masks = {kind: causal_mask(length, dtype, device, window if kind == "sliding_attention" else None)
             for kind in MASKS}  # fmt: skip
    return [(kind, masks[kind]) for kind in types]


def _rotary(body, x, positions, kind: str):
    """cos and sin of the rotary embedding (Gemma 3 keeps one table per attention type)."""
    if "layer_type" in inspect.signature(body.rotary_emb.forward).parameters:
        return body.rotary_emb(x, positions, kind)
    return body.rotary_emb(x, position_ids=positions)


def _rotary_decoder(model, inputs: dict) -> tuple[list[Step], torch.Tensor | None]:
    body, step = model.base_model, _Recorder()
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
        attended = _first(layer.self_attn(h, position_embeddings=rope[kind], attention_mask=mask))
        step("self-attention" + (" (sliding window)" if kind == "sliding_attention" else ""), "attention",
             f"{path}.self_attn", attended, h, mask)  # fmt: skip
        if layout != "pre-norm":
            attended = norm("post_attention_layernorm", attended)
        x = step.add(x, attended, "attention")
        if layout == "post-norm":
            h = x
        else:
            h = norm("post_attention_layernorm" if layout == "pre-norm" else "pre_feedforward_layernorm", x)
        mlp_name = "mlp" if hasattr(layer, "mlp") else "block_sparse_moe"
        fed = step(mlp_name, "mlp", f"{path}.{mlp_name}", _first(getattr(layer, mlp_name)(h)), h)
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


# --- BERT-like encoders ---------------------------------------------------------------------------


def _bert(model, inputs: dict) -> tuple[list[Step], torch.Tensor | None]:
    base, step = model.base_model, _Recorder()
    prefix = "" if base is model else next(f"{n}." for n, m in model.named_children() if m is base)
    embeddings = base.embeddings
    ids = inputs["input_ids"]
    where = f"{prefix}embeddings"
    words = step("word_embeddings", "embedding", f"{where}.word_embeddings", embeddings.word_embeddings(ids), ids)
    if hasattr(embeddings, "create_position_ids_from_input_ids"):  # RoBERTa: counted from the padding index + 1
        positions = embeddings.create_position_ids_from_input_ids(ids, embeddings.padding_idx)
        label = f"position_embeddings (positions {embeddings.padding_idx + 1}, {embeddings.padding_idx + 2}, …)"
    else:
        positions, label = torch.arange(ids.shape[1], device=ids.device)[None], "position_embeddings"
    place = step(label, "positions", f"{where}.position_embeddings", embeddings.position_embeddings(positions),
                 positions)  # fmt: skip
    segment = embeddings.token_type_embeddings(torch.zeros_like(ids))
    step("token_type_embeddings", "embedding", f"{where}.token_type_embeddings", segment, ids)
    summed = step("sum of the three", "residual", "", words + place + segment, words, place, segment)
    x = step("embeddings LayerNorm", "norm", f"{where}.LayerNorm", embeddings.LayerNorm(summed), summed, stream=True)
    if hasattr(base, "embeddings_project"):  # ELECTRA: small embeddings, projected up to the hidden size
        x = step("embeddings_project", "embedding", f"{prefix}embeddings_project", base.embeddings_project(x), x,
                 stream=True)  # fmt: skip
    mask = torch.zeros(1, 1, ids.shape[1], ids.shape[1], dtype=x.dtype, device=x.device)  # one text: no padding
    for index, layer in enumerate(base.encoder.layer):
        step.layer, path = index, f"{prefix}encoder.layer.{index}"
        mixed = _first(layer.attention.self(x, attention_mask=mask))
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
    step.layer = None
    if getattr(base, "pooler", None) is not None:
        step("pooler (dense + tanh on the first token)", "head", "pooler", base.pooler(x), x)
    logits = None
    for name, child in model.named_children() if base is not model else ():
        if child is not base:  # a masked-LM head: everything outside the backbone, in order
            logits = step(f"{name} (masked-LM head)", "head", name, child(x if logits is None else logits), x)
    return step.steps, logits


# --- encoder-decoders -----------------------------------------------------------------------------


def _position_rows(table, length: int, device) -> torch.Tensor:
    """Rows 0..length-1 of a position table; BART's learned table starts 2 rows in (its ``offset``)."""
    return table.weight[torch.arange(length, device=device) + getattr(table, "offset", 0)][None]


def _seq2seq_block(step: _Recorder, layer, path: str, x, pre_norm: bool, mask=None, memory=None):
    """One encoder or decoder block: self-attention, cross-attention when ``memory`` is given, MLP."""
    parts = [("self_attn", "self-attention", "attention", "self_attn_layer_norm", mask)]
    if memory is not None:
        parts.append(("encoder_attn", "cross-attention", "cross-attention", "encoder_attn_layer_norm", None))
    for attribute, label, kind, norm_name, part_mask in parts:
        attention, norm = getattr(layer, attribute), getattr(layer, norm_name)
        h = step(norm_name, "norm", f"{path}.{norm_name}", norm(x), x) if pre_norm else x
        extra = {"key_value_states": memory} if attribute == "encoder_attn" else {}
        attended = step(label, kind, f"{path}.{attribute}", _first(attention(h, attention_mask=part_mask, **extra)), h)
        x = step.add(x, attended, label, post_norm=not pre_norm)
        if not pre_norm:
            x = step(norm_name, "norm", f"{path}.{norm_name}", norm(x), x, stream=True)
    h = step("final_layer_norm", "norm", f"{path}.final_layer_norm", layer.final_layer_norm(x), x) if pre_norm else x
    up = step("fc1 + activation", "mlp", f"{path}.fc1", layer.activation_fn(layer.fc1(h)), h)
    x = step.add(x, step("fc2", "mlp", f"{path}.fc2", layer.fc2(up), up), "MLP", post_norm=not pre_norm)
    if not pre_norm:
        x = step("final_layer_norm", "norm", f"{path}.final_layer_norm", layer.final_layer_norm(x), x, stream=True)
    return x


def _embed_text(step: _Recorder, stack, path: str, ids):
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


def _end_of_stack(step: _Recorder, stack, path: str, x):
    if getattr(stack, "layer_norm", None) is not None:  # pre-norm stacks end with one more LayerNorm
        x = step("layer_norm", "norm", f"{path}.layer_norm", stack.layer_norm(x), x)
    return x


def _seq2seq(model, inputs: dict) -> tuple[list[Step], torch.Tensor]:
    pre_norm = SEQ2SEQ[model.config.model_type] == "pre-norm"
    encoder, decoder = model.get_encoder(), model.get_decoder()
    where = {"encoder": "model.encoder", "decoder": "model.decoder"}
    step = _Recorder("encoder")
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

    step = _Recorder("decoder")
    ids = inputs["decoder_input_ids"]
    y = _embed_text(step, decoder, where["decoder"], ids)
    step("input to the blocks", "residual", "", y, stream=True)
    mask = causal_mask(ids.shape[1], y.dtype, y.device)
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


# --- choosing a recipe and proving it -------------------------------------------------------------


def _recipe(model):
    config = model.config
    if hasattr(model, "hf_device_map"):
        raise FamilyError(
            "The by-hand walk calls each sub-module itself, which skips the hooks that bring offloaded "
            "weights in: use how='hooks' for a model loaded with offload= or device_map=."
        )
    if config.model_type in SEQ2SEQ:
        return _seq2seq
    if config.model_type in BERT_LIKE and hasattr(model.base_model, "embeddings"):
        return _bert
    if not config.is_encoder_decoder and hasattr(model.base_model, "rotary_emb"):
        return _rotary_decoder
    raise FamilyError(
        f"The by-hand walk knows rotary decoders (Llama, Mistral, Qwen, Gemma, Phi-3, OLMo-2, ...), BERT-like "
        f"encoders (BERT, RoBERTa, ELECTRA) and BART, mBART, Marian, Pegasus and Whisper; this model is "
        f"{config.model_type!r}. {HOOKS}"
    )


def _prove(model, inputs: dict, steps: list[Step], logits) -> None:
    """Refuse a by-hand walk that does not end where the model's own forward pass ends."""
    with torch.no_grad():
        reference = model(**inputs, output_hidden_states=True, use_cache=False)
    states = getattr(reference, "decoder_hidden_states", None) or reference.hidden_states
    pairs = [("last hidden state", final_hidden_state(steps), batchless(states[-1]))]
    if steps[-1].kind == "head":
        pairs.append(("output", steps[-1].output, model_output(reference)))
    for what, ours, theirs in pairs:
        scale = max(1.0, float(theirs.abs().max()))
        if ours.shape != theirs.shape or not torch.allclose(ours, theirs, rtol=1e-3, atol=1e-4 * scale):
            gap = float((ours - theirs).abs().max()) if ours.shape == theirs.shape else float("nan")
            raise FamilyError(
                f"The by-hand recipe does not reproduce {type(model).__name__}'s forward pass on this input (its "
                f"{what} is off by {gap:.3g}), so it is not shown as equal. {HOOKS}"
            )


def walk_by_hand(model, inputs: dict) -> tuple[list[Step], torch.Tensor | None]:
    """Run ``model`` on ``inputs`` one sub-module at a time; return the steps and the logits [tokens, vocab].

    Raises ``FamilyError`` for an architecture no recipe fits, or when the walk does not end on the
    model's own forward pass.
    """
    recipe = _recipe(model)
    with torch.no_grad():
        try:
            steps, logits = recipe(model, inputs)
        except (AttributeError, TypeError, KeyError) as error:  # a part is missing or called differently
            raise FamilyError(
                f"{type(model).__name__} is built differently from what the by-hand recipe expects "
                f"({type(error).__name__}: {error}). {HOOKS}"
            ) from error
    _prove(model, inputs, steps, logits)
    return steps, batchless(logits)
