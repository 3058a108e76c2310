"""Lesson 05: temperature, then top-k, then top-p on the decoder's real next-token scores.

Checked against transformers' own ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and
``TopPLogitsWarper`` applied in ``generate``'s order, on the lesson's prompt with several knob
settings, and on a tie at the k-th score (transformers keeps every token tied with it).

Example:
    >>> import torch
    >>> filter_logits(torch.tensor([2.0, 1.0, 0.0]), 1.0, 1, 1.0).tolist()
    [1.0, 0.0, 0.0]
"""

from __future__ import annotations

import torch

from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

PROMPT = "The best thing about AI is its ability to"


def filter_logits(logits, temperature, top_k, top_p):
    """Scores [vocabulary] -> probabilities after temperature, top-k (0: off), top-p (1.0: off); cut tokens get 0."""
    scores = logits / temperature
    if top_k > 0:
        kth = scores.topk(top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))  # a token tied with the k-th score stays
    if top_p < 1.0:
        order = scores.argsort(descending=True)
        probabilities = scores[order].softmax(-1)
        above = probabilities.cumsum(-1) - probabilities  # the mass of the tokens ranked above each one
        scores[order[above >= top_p]] = float("-inf")  # keep a token while the mass above it is below p
    return scores.softmax(-1)


def transformers_filter(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The same through transformers' own warpers, in generate's order (the referee)."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    scores, ids = logits[None].clone(), torch.zeros(1, 1, dtype=torch.long)
    warpers = [TemperatureLogitsWarper(temperature)] + ([TopKLogitsWarper(top_k)] if top_k > 0 else []) + (
        [TopPLogitsWarper(top_p)] if top_p < 1.0 else [])  # fmt: skip
    for warper in warpers:
        scores = warper(ids, scores)
    return scores.softmax(-1)[0]


def cases() -> list[Case]:
    m = course_models.embedded("decoder")
    logits = m.run(PROMPT).logits[0, -1].float()
    tied = logits.clone()
    ranked = tied.argsort(descending=True)
    tied[ranked[10]] = tied[ranked[9]]  # the 11th score equals the 10th: a tie at k = 10
    settings = [("the lesson's prompt, generate's knobs (0.7, 50, 0.9)", logits, 0.7, 50, 0.9),
                ("temperature 1.5, top-k off, top-p 0.5", logits, 1.5, 0, 0.5),
                ("temperature 1, top-k 5, top-p off", logits, 1.0, 5, 1.0),
                ("a tie at the 10th score, top-k 10", tied, 1.0, 10, 1.0),
                ("temperature 0.3, top-p 0.5: the first token alone passes p", logits, 0.3, 0, 0.5),
                ("scores shifted so the highest is 0, top-k 20", logits - logits.max(), 1.0, 20, 1.0)]  # fmt: skip
    return [Case(label, (x, t, k, p), transformers_filter(x, t, k, p)) for label, x, t, k, p in settings]


def _top_k(scores, top_k, exact=False, shift=0):
    if top_k <= 0:
        return scores
    if exact:
        kept = torch.full_like(scores, float("-inf"))
        index = scores.topk(top_k).indices
        return kept.index_put((index,), scores[index])
    kth = scores.topk(top_k + shift).values[-1]
    return scores.masked_fill(scores < kth, float("-inf"))


def _top_p(scores, top_p, inclusive=False):
    if top_p >= 1.0:
        return scores
    order = scores.argsort(descending=True)
    probabilities = scores[order].softmax(-1)
    total = probabilities.cumsum(-1)
    drop = total > top_p if inclusive else total - probabilities >= top_p
    scores = scores.clone()
    scores[order[drop]] = float("-inf")
    return scores


def _no_temperature(logits, temperature, top_k, top_p):
    return _top_p(_top_k(logits.clone(), top_k), top_p).softmax(-1)


def _temperature_last(logits, temperature, top_k, top_p):
    return (_top_p(_top_k(logits.clone(), top_k), top_p) / temperature).softmax(-1)


def _times_temperature(logits, temperature, top_k, top_p):
    return _top_p(_top_k(logits * temperature, top_k), top_p).softmax(-1)


def _drops_crossing(logits, temperature, top_k, top_p):
    return _top_p(_top_k(logits / temperature, top_k), top_p, inclusive=True).softmax(-1)


def _p_before_k(logits, temperature, top_k, top_p):
    return _top_k(_top_p(logits / temperature, top_p), top_k).softmax(-1)


def _exact_k(logits, temperature, top_k, top_p):
    return _top_p(_top_k(logits / temperature, top_k, exact=True), top_p).softmax(-1)


def _one_more(logits, temperature, top_k, top_p):
    return _top_p(_top_k(logits / temperature, top_k, shift=1), top_p).softmax(-1)


def _cut_to_zero(logits, temperature, top_k, top_p):
    scores = logits / temperature
    kept = torch.isfinite(_top_p(_top_k(scores, top_k), top_p))
    return scores.where(kept, torch.zeros_like(scores)).softmax(-1)


def _not_renormalised(logits, temperature, top_k, top_p):
    scores = logits / temperature
    return scores.softmax(-1) * torch.isfinite(_top_p(_top_k(scores, top_k), top_p))


def _scores_returned(logits, temperature, top_k, top_p):
    return _top_p(_top_k(logits / temperature, top_k), top_p)


EXERCISE = CodeExercise(
    "Write the knobs of generate: divide the scores by the temperature, keep the top-k, then the top-p, and "
    "return the probabilities. It is checked against transformers' own processors.",
    "filter_logits(logits, temperature, top_k, top_p) -> probabilities", filter_logits, cases,
    [Mistake("a temperature applied to the probabilities (or not at all)", "temperature divides the *scores* "
             "before the softmax; dividing probabilities and renormalising changes nothing.", _no_temperature),
     Mistake("a temperature applied after the cuts", "generate divides by the temperature first, so top-p sees "
             "the sharpened (or flattened) distribution.", _temperature_last),
     Mistake("multiplying by the temperature", "a temperature below 1 must sharpen: divide.", _times_temperature),
     Mistake("a top-p that drops the token that crosses p", "top-p keeps the smallest set whose mass reaches p: "
             "the token that takes the sum past p stays.", _drops_crossing),
     Mistake("top-p before top-k", "generate cuts to the top-k first, then takes top-p of what is left "
             "(renormalised).", _p_before_k),
     Mistake("keeping exactly k tokens at a tie", "transformers keeps every token whose score equals the k-th: "
             "compare scores with the k-th score instead of taking k indices.", _exact_k),
     Mistake("a top-k that keeps one token too many", "count again: top-k keeps k tokens.", _one_more),
     Mistake("setting cut scores to 0 instead of -inf", "a score of 0 is not 'never': exp(0) = 1, more than a "
             "kept token whose score is below 0; cut scores must become -inf.", _cut_to_zero),
     Mistake("forgetting to renormalise after the cuts", "the kept probabilities must sum to 1 again: take the "
             "softmax of the kept scores.", _not_renormalised),
     Mistake("returning scores instead of probabilities", "finish with a softmax: probabilities are between 0 "
             "and 1 and sum to 1.", _scores_returned)],
    "generate divides the scores by the temperature, sets to -inf every score below the k-th (ties stay), then "
    "keeps the highest-ranked tokens until their mass reaches p (the crossing token included); the softmax of "
    "what is left is what it samples from.",
    tolerance=1e-5, hint="check that your probabilities sum to 1 and count the tokens you keep (x > 0).sum().",
)  # fmt: skip
