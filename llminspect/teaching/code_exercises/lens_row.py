"""Lesson 06: one row of the logit lens — the stream after one block, read through the final norm and the head.

``streams`` is what ``m.run(text, keep=["embeddings", "layer.*.output"])`` keeps, stacked:
``streams[0]`` the embeddings, ``streams[L + 1]`` the stream leaving block L. After the last block
the row must equal the model's own output; the middle rows equal ``m.logit_lens``, which the suite
checks against the model cut after that block.

Example:
    >>> import torch
    >>> streams = torch.zeros(2, 3, 4)
    >>> lens_row(streams, 0, torch.nn.Identity(), torch.nn.Linear(4, 5)).exp().sum().round().item()
    1.0
"""

from __future__ import annotations

import torch

from llminspect.analysis.lens import every_layer_logits
from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

PROMPTS = ("The capital of France is", "The Eiffel Tower is in the city of")


def lens_row(streams, layer, norm, unembed):
    """The next-token log-probabilities [vocabulary] at the last position, read after block `layer`."""
    after = streams[layer + 1][-1]  # streams[0] is the embeddings: block L's output is one further on
    return unembed(norm(after)).log_softmax(dim=-1)


def streams_of(m, text: str) -> torch.Tensor:
    """The embeddings and every block's output for ``text``: [blocks + 1, tokens, hidden]."""
    cache = m.run(text, keep=["embeddings", "layer.*.output"])
    return torch.stack([value[0] for value in cache.values()])


def cases() -> list[Case]:
    m = course_models.embedded("decoder")
    norm, head, last = m.model.model.norm, m.model.lm_head, m.config.num_hidden_layers - 1
    found = []
    with torch.no_grad():
        for text, layers in zip(PROMPTS, ((15, last), (22, 0)), strict=True):
            streams, lens = streams_of(m, text), every_layer_logits(m, m.inputs(text))
            own = m.run(text).logits[0, -1].log_softmax(-1)  # the model's own output: the referee for the last block
            for layer in layers:
                expected = own if layer == last else lens[layer + 1, -1].log_softmax(-1)
                found.append(Case(f"after block {layer} on {text!r}", (streams, layer, norm, head), expected))
    return found


def _one_early(streams, layer, norm, unembed):
    return unembed(norm(streams[layer][-1])).log_softmax(-1)


def _no_norm(streams, layer, norm, unembed):
    return unembed(streams[layer + 1][-1]).log_softmax(-1)


def _probabilities(streams, layer, norm, unembed):
    return unembed(norm(streams[layer + 1][-1])).softmax(-1)


def _first_position(streams, layer, norm, unembed):
    return unembed(norm(streams[layer + 1][0])).log_softmax(-1)


def _raw_scores(streams, layer, norm, unembed):
    return unembed(norm(streams[layer + 1][-1]))


EXERCISE = CodeExercise(
    "Write one row of the logit lens: take the stream after block `layer` at the last position, apply the "
    "final norm and the unembedding, return log-probabilities. After the last block it must be the model's "
    "own output.",
    "lens_row(streams, layer, norm, unembed) -> log-probabilities", lens_row, cases,
    [Mistake("an off-by-one layer (streams[layer] is the stream *entering* block layer)", "streams[0] holds the "
             "embeddings: which index holds what block `layer` wrote?", _one_early),
     Mistake("skipping the final norm", "the head was trained on normalised vectors: read the stream the way the "
             "model reads its last one.", _no_norm),
     Mistake("returning probabilities instead of log-probabilities", "log_softmax, not softmax.", _probabilities),
     Mistake("reading the first position", "the next token is predicted at the last position.", _first_position),
     Mistake("returning raw scores", "turn the scores into log-probabilities: log_softmax over the vocabulary.",
             _raw_scores)],
    "the lens treats the stream after block L as if it were the last one: final norm, then the unembedding, "
    "then log_softmax over the vocabulary. streams[L + 1] is block L's output, because streams[0] is the stream "
    "before any block.",
    tolerance=1e-3, hint="after the last block your row must be the model's own output for the same text: "
    "compare the two.",
)  # fmt: skip
