"""Lesson 06: RMSNorm, checked against the decoder's own norms on the streams they really read.

Cases: the final norm on the stream leaving the last block (values in the hundreds), block 3's
input norm on the stream it read, and a stream a thousand times smaller than usual, where ε is
no longer negligible.

Example:
    >>> import torch
    >>> [round(v, 4) for v in rms_norm(torch.tensor([[3.0, 4.0]]), torch.ones(2), 0.0)[0].tolist()]
    [0.8485, 1.1314]
"""

from __future__ import annotations

import torch

from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

PROMPT = "The capital of France is"


def rms_norm(x, weight, eps):
    """x [tokens, hidden] divided by the root of its mean square over the hidden numbers (plus eps), times weight."""
    return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def cases() -> list[Case]:
    m = course_models.embedded("decoder")
    last = m.config.num_hidden_layers - 1
    cache = m.run(PROMPT, keep=[f"layer.{last}.output", "layer.3.input"])
    final, block = m.model.model.norm, m.model.model.layers[3].input_layernorm
    stream, early = cache[f"layer.{last}.output"][0], cache["layer.3.input"][0]
    found = [("the final norm on the stream leaving the last block", stream, final),
             ("block 3's input norm on the stream it read", early, block),
             ("a stream 1,000 times smaller, where ε matters", early / 1000, block)]  # fmt: skip
    with torch.no_grad():
        return [Case(label, (x, norm.weight, norm.variance_epsilon), norm(x)) for label, x, norm in found]


def _layer_norm(x, weight, eps):
    centred = x - x.mean(-1, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps) * weight


def _no_eps(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True)) * weight


def _eps_outside(x, weight, eps):
    return x / (torch.sqrt(x.pow(2).mean(-1, keepdim=True)) + eps) * weight


def _no_weight(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _no_root(x, weight, eps):
    return x / (x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _sum_not_mean(x, weight, eps):
    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight


def _tokens_axis(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(0, keepdim=True) + eps) * weight


EXERCISE = CodeExercise(
    "Write RMSNorm: divide each token's vector by the root of its mean square (plus ε), then scale by the "
    "weight. It is checked against the decoder's own final norm and a block's input norm.",
    "rms_norm(x, weight, eps) -> normalised x", rms_norm, cases,
    [Mistake("subtracting the mean (that is LayerNorm)", "RMSNorm does not centre: it only divides by the root "
             "mean square.", _layer_norm),
     Mistake("forgetting ε", "ε goes inside the root; it matters when a vector is tiny.", _no_eps),
     Mistake("adding ε outside the root", "the model adds ε to the mean square, then takes the root.", _eps_outside),
     Mistake("forgetting the weight", "the norm ends by multiplying each hidden number by its learned gain.",
             _no_weight),
     Mistake("dividing by the mean square without the root", "root mean square: take the square root.", _no_root),
     Mistake("a sum instead of a mean", "divide the sum of squares by the number of hidden numbers.", _sum_not_mean),
     Mistake("normalising over the tokens axis", "each token is normalised on its own: reduce over the last axis.",
             _tokens_axis)],
    "RMSNorm rescales each token's vector to a root mean square of 1 (ε keeps a near-zero vector finite), then "
    "multiplies by a learned gain per hidden number; unlike LayerNorm it does not subtract the mean.",
    tolerance=1e-4, hint="compare x.pow(2).mean(-1) of your output before the weight: it should be about 1.",
)  # fmt: skip
