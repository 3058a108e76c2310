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

import torch

from llminspect.analysis.by_hand.bert import bert
from llminspect.analysis.by_hand.decoder import rotary_decoder
from llminspect.analysis.by_hand.recorder import HOOKS
from llminspect.analysis.by_hand.seq2seq import SEQ2SEQ, seq2seq
from llminspect.analysis.steps import Step, batchless, final_hidden_state, model_output
from llminspect.errors import FamilyError

BERT_LIKE = {"bert", "roberta", "xlm-roberta", "camembert", "electra"}


def _recipe(model):
    config = model.config
    if hasattr(model, "hf_device_map"):
        raise FamilyError(
            "The by-hand walk calls each sub-module itself, which skips the hooks that bring offloaded "
            "weights in: use how='hooks' for a model loaded with offload= or device_map=."
        )
    if config.model_type in SEQ2SEQ:
        return seq2seq
    if config.model_type in BERT_LIKE and hasattr(model.base_model, "embeddings"):
        return bert
    if not config.is_encoder_decoder and hasattr(model.base_model, "rotary_emb"):
        return rotary_decoder
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
