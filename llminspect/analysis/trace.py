"""Trace: one forward pass captured, for every model family.

``capture`` runs the model once with ``output_hidden_states`` and ``output_attentions`` and
repacks the per-layer tuples transformers returns into stacked CPU tensors without a batch
dimension, so every view and test indexes them the same way:

- ``hidden_states``: [layers + 1, tokens, hidden] (index 0 is the embedding output)
- ``attentions``: [layers, heads, tokens, tokens] (row = the token attending, column = attended);
  float32 tensors, or for long inputs compact ``AttentionMaps`` (float16, causal half) read the same way
- ``cross_attentions`` (encoder-decoder): [layers, heads, target tokens, source positions]

For an encoder-decoder model the *decoder* is the stack that writes, so ``tokens``,
``hidden_states``, ``attentions`` and ``logits`` belong to the decoder, and the encoder's side
lives in ``source``, ``encoder_hidden_states`` and ``encoder_attentions``.

Example:
    >>> import llminspect as li
    >>> li.load("encoder").trace("The quick brown fox").attentions.shape
    torch.Size([6, 12, 6, 6])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.audio import Audio
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.maps import AttentionMaps, compact
from llminspect.analysis.sites import run
from llminspect.analysis.tokens import Tokens
from llminspect.errors import FamilyError, LLMInspectError


@dataclass
class Trace:
    """Everything one forward pass computed that a lesson looks at."""

    family: str
    tokens: Tokens
    hidden_states: torch.Tensor
    attentions: torch.Tensor
    logits: torch.Tensor | None  # [tokens, vocab]; None for an encoder without a language-model head
    source: Tokens | Audio | None = None
    encoder_hidden_states: torch.Tensor | None = None
    encoder_attentions: torch.Tensor | None = None
    cross_attentions: torch.Tensor | None = None
    num_key_value_heads: int | None = None  # < heads means grouped-query attention
    audio_positions: int | None = None  # encoder positions that hold real audio (the rest is padding)
    seconds_per_position: float | None = None  # audio time one encoder position stands for (Whisper: 0.02 s)

    @property
    def num_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def num_heads(self) -> int:
        return self.attentions.shape[1]

    @property
    def decoder_attentions(self) -> torch.Tensor:
        """The decoder's self-attention (encoder-decoder traces only; same as ``attentions``)."""
        if self.family != "encoder-decoder":
            raise FamilyError(
                "decoder_attentions exists for encoder-decoder traces; "
                f"this trace is from the {self.family} family: use .attentions."
            )
        return self.attentions


def stack_layers(per_layer: tuple[torch.Tensor, ...] | None, what: str) -> torch.Tensor:
    """Stack transformers' per-layer tuple (each [1, ...]) into one float32 CPU tensor [layers, ...]."""
    if not per_layer:
        # transformers 5 returns an *empty* tuple (and only logs) when the attention
        # implementation cannot output weights, e.g. SDPA; never hand that to a view.
        raise LLMInspectError(
            f"The model returned no {what}. Its attention implementation cannot report weights: "
            "reload it with attn_implementation='eager' (llminspect.load does this for you)."
        )
    return torch.stack([layer[0] for layer in per_layer]).detach().float().cpu()


def stack_maps(per_layer: tuple[torch.Tensor, ...] | None, what: str) -> torch.Tensor | AttentionMaps:
    """Like ``stack_layers`` for attention maps, kept compact (float16, causal half) when they are large."""
    stack_layers(per_layer[:1] if per_layer else per_layer, what)  # the same refusal when there are none
    return compact([layer[0].detach().float().cpu() for layer in per_layer])


def _logits(outputs) -> torch.Tensor | None:
    logits = getattr(outputs, "logits", None)
    return None if logits is None else logits[0].detach().float().cpu()


def capture(m, inputs: Inputs) -> Trace:
    """Run ``m`` once on checked ``inputs`` with every hidden state and attention map, and keep them.

    Example:
        >>> import llminspect as li
        >>> from llminspect.analysis.inputs import prepare
        >>> m = li.load("toy-seq2seq")
        >>> capture(m, prepare(m, "happy bird eats mouse")).cross_attentions.shape
        torch.Size([2, 4, 6, 5])
    """
    outputs = run(m, inputs, output_hidden_states=True, output_attentions=True).output
    if m.family != "encoder-decoder":
        return Trace(
            family=m.family,
            tokens=inputs.tokens,
            hidden_states=stack_layers(outputs.hidden_states, "hidden states"),
            attentions=stack_maps(outputs.attentions, "attentions"),
            logits=_logits(outputs),
            num_key_value_heads=getattr(m.config, "num_key_value_heads", None),
        )
    return Trace(
        family="encoder-decoder",
        tokens=inputs.tokens,
        hidden_states=stack_layers(outputs.decoder_hidden_states, "decoder hidden states"),
        attentions=stack_maps(outputs.decoder_attentions, "decoder attentions"),
        logits=_logits(outputs),
        source=inputs.source,
        encoder_hidden_states=stack_layers(outputs.encoder_hidden_states, "encoder hidden states"),
        encoder_attentions=stack_maps(outputs.encoder_attentions, "encoder attentions"),
        cross_attentions=stack_maps(outputs.cross_attentions, "cross-attentions"),
        **(inputs.timing if inputs.audio_positions is not None else {}),
    )
