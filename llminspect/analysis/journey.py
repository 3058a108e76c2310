"""The whole journey of one prompt through a decoder, as data: every stage with its real shape and numbers.

tokenize → embed → position → attention → MLP → residual + norm (× layers) → vocabulary
distribution → choose → append → repeat. One forward pass (one run that also keeps the MLP output of
the block shown) fills every stage; each stage names the lesson that opens it up. ``next_step``
appends the chosen token and runs the loop again. For an encoder-decoder, ``translation_steps``
follows the decoder's loop: the encoder runs once, then each written token looks back at the
source through cross-attention.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> trip = journey(m, m.inputs("The capital of France is"))
    >>> [s.name for s in trip.stages][:3], trip.chosen
    (['tokenize', 'embed', 'position'], ' Paris')
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.next_token import NextTokens, top_tokens
from llminspect.analysis.sites import check_head, check_layer, run, sites_of
from llminspect.analysis.trace import capture


@dataclass(frozen=True)
class Stage:
    """One box of the journey: what happens, the shape of its result, a few of its real numbers."""

    name: str
    lesson: str  # the lesson that opens this stage up
    what: str
    shape: tuple[int, ...]
    numbers: list[float]
    labels: list[str] | None = None  # what the numbers belong to, when not a vector's first entries


@dataclass(frozen=True)
class Journey:
    """One prompt through the whole loop, and the token the loop appends."""

    prompt: str
    tokens: list[str]
    stages: list[Stage]
    top: NextTokens
    chosen: str
    chosen_id: int
    layer: int  # the block whose attention and MLP are shown
    head: int


def _position_words(config) -> str:
    if getattr(config, "rope_parameters", None) or getattr(config, "rope_theta", None):
        return "nothing is added: inside attention, each q and k is turned by position (RoPE)"
    return "a position vector is added to each token's vector"


def journey(m, inputs: Inputs, layer: int | None = None, head: int = 0, k: int = 5) -> Journey:
    """Follow ``inputs`` through ``m`` once: the stages of the loop, and the greedy next token."""
    m.require_decoder("The whole journey")
    stack = sites_of(m).architecture.writer
    layer = stack.layers // 2 if layer is None else check_layer(m, layer)
    head = check_head(m, head)
    mlp = f"layer.{layer}.mlp.output"
    cache = run(m, inputs, keep=[mlp], last_only=True, output_hidden_states=True, output_attentions=True)  # one pass
    tokens, last = inputs.tokens.labels, len(inputs.tokens.ids) - 1
    hidden = torch.stack([h[0] for h in cache.output.hidden_states]).float().cpu()
    last_logits = cache.logits[0, -1].float().cpu()  # only the last position is scored: it alone chooses
    scores = (len(tokens), last_logits.shape[-1])  # what the vocabulary stage is: one score per token, per position
    top = top_tokens(m, inputs.tokens.text, last_logits.double().softmax(-1), k)
    attention = cache.output.attentions[layer][0].float().cpu()  # [heads, tokens, tokens]
    inside = cache[mlp].reshape(-1, len(tokens), hidden.shape[-1])[0].float().cpu()  # OPT's MLP sees [tokens, hidden]
    row = attention[head, last]
    stream = hidden[:, last].norm(dim=-1)
    every = range(0, len(stream), max(1, len(stream) // 6))
    after = [("embeddings" if i == 0 else "final norm" if i == len(stream) - 1 else f"block {i - 1}") for i in every]
    stages = [
        Stage("tokenize", "01", "text → token ids", (len(tokens),), [float(i) for i in inputs.tokens.ids], tokens),
        Stage("embed", "02", f"each id → its row of the embedding table (the last token, {tokens[-1]}: first numbers)",
              tuple(hidden[0].shape), hidden[0, last, :4].tolist()),
        Stage("position", "06", _position_words(m.config), tuple(hidden[0].shape), []),
        Stage("attention", "03", f"layer {layer}, head {head}: where the last token looks (weights sum to 1)",
              tuple(attention.shape[-2:]), row.tolist(), tokens),
        Stage("MLP", "06", f"layer {layer}: each token alone, widened and narrowed (the last token's first numbers)",
              tuple(inside.shape), inside[last, :4].tolist()),
        Stage("residual + norm, × layers", "06", f"{stack.layers} blocks each add to the stream: the length of the "
              "last token's vector after some of them", tuple(hidden.shape), stream[list(every)].tolist(), after),
        Stage("vocabulary", "05", "the last position's scores → softmax: a probability for every token",
              scores, top.probabilities, top.tokens),
        Stage("choose", "05", "greedy: the likeliest token (sampling draws instead)", (1,), [top.probabilities[0]],
              top.tokens[:1]),
    ]  # fmt: skip
    return Journey(inputs.tokens.text, tokens, stages, top, top.tokens[0], top.ids[0], layer, head)


def next_step(m, inputs: Inputs, trip: Journey) -> Inputs:
    """The loop's last arrow: the chosen token appended to the text, ready for the next journey."""
    return inputs.with_tokens(m, inputs.tokens.ids + [trip.chosen_id])


@dataclass(frozen=True)
class TranslationStep:
    """One step of an encoder-decoder's loop: what the decoder has read, where it looks, what it writes."""

    reads: str  # the decoder token at this position
    looks_at: str  # the source token with the largest cross-attention weight (last layer, mean of heads)
    weight: float
    writes: str
    probability: float


@dataclass(frozen=True)
class Translation:
    source: list[str]
    encoder_shape: tuple[int, ...]  # computed once
    steps: list[TranslationStep]


def translation_steps(m, inputs: Inputs) -> Translation:
    """An encoder-decoder's loop: the encoder once, then each decoder step with its cross-attention peak."""
    m.require_family("translation_steps", "encoder-decoder")
    trace = capture(m, inputs)
    cross = trace.cross_attentions[-1].float().mean(0)  # [decoder tokens, source positions]
    source = inputs.source.labels if hasattr(inputs.source, "labels") else [str(i) for i in range(cross.shape[1])]
    written = trace.tokens.labels
    probabilities = trace.logits.double().softmax(-1)
    steps = []
    for t in range(len(written) - 1):
        peak = int(cross[t].argmax())
        steps.append(TranslationStep(written[t], source[peak], float(cross[t, peak]), written[t + 1],
                                     float(probabilities[t, trace.tokens.ids[t + 1]])))  # fmt: skip
    encoded = trace.encoder_hidden_states[-1]
    return Translation(source, tuple(encoded.shape), steps)
