"""Lesson 09: the induction score of one head, from its attention map over random tokens repeated twice.

The cases are the decoder's own maps on the lesson's 40 random tokens repeated (the strongest
induction head 18.6, the previous-token head 16.0) and on another seed, plus a small hand-made map
with a period of 3 on which the usual slips all give different numbers. The referee is the
lesson's ``analysis.circuits.induction_scores``, which the suite checks against a plain forward pass.

Example:
    >>> import torch
    >>> induction_score(torch.eye(4)[[0, 0, 1, 2]], 2)  # queries 2 and 3 look at keys 1 and 2
    1.0
"""

from __future__ import annotations

import torch

from llminspect.analysis.circuits import induction_scores
from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

PERIOD = 40


def induction_score(pattern, period):
    """The mean weight each query of the second copy puts on the token after the earlier occurrence of its token."""
    queries = torch.arange(period, pattern.shape[-1])  # the second copy: its tokens occurred `period` earlier
    return float(pattern[queries, queries - period + 1].mean())  # one past the earlier copy: what comes next


def hand_made() -> torch.Tensor:
    """Six tokens, period 3: each query spreads its weight so that every slip gives a number of its own."""
    generator = torch.Generator().manual_seed(9)
    pattern = torch.rand(6, 6, generator=generator).tril()
    return pattern / pattern.sum(-1, keepdim=True)


def cases() -> list[Case]:
    m = course_models.embedded("decoder")
    lesson, other = m.induction(length=PERIOD, seed=0), m.induction(length=PERIOD, seed=3)
    found = [("head 18.6 on the lesson's repeat", lesson.attentions[18, 6], PERIOD),
             ("head 16.0 (a previous-token head) on the lesson's repeat", lesson.attentions[16, 0], PERIOD),
             ("head 17.3 on another random repeat", other.attentions[17, 3], PERIOD),
             ("a hand-made 6 × 6 map with a period of 3", hand_made(), 3)]  # fmt: skip
    return [Case(label, (pattern, period), float(induction_scores(pattern, period)))
            for label, pattern, period in found]  # fmt: skip


def _same_token(pattern, period):
    queries = torch.arange(period, pattern.shape[-1])
    return float(pattern[queries, queries - period].mean())


def _one_early(pattern, period):
    queries = torch.arange(period - 1, pattern.shape[-1])
    return float(pattern[queries, queries - period + 1].mean())


def _every_query(pattern, period):
    queries = torch.arange(period, pattern.shape[-1])
    return float(pattern[queries, queries - period + 1].sum() / pattern.shape[-1])


def _transposed(pattern, period):
    queries = torch.arange(period, pattern.shape[-1])
    return float(pattern[queries - period + 1, queries].mean())


def _summed(pattern, period):
    queries = torch.arange(period, pattern.shape[-1])
    return float(pattern[queries, queries - period + 1].sum())


EXERCISE = CodeExercise(
    "Write the induction score of one head: over the second copy's queries t, the mean attention weight on key "
    "t − period + 1 (the token after the earlier occurrence of t's token). It is checked on the decoder's maps.",
    "induction_score(pattern, period) -> float", induction_score, cases,
    [Mistake("reading the earlier copy of the same token (t − period)", "an induction head looks one further: at "
             "the token that *followed* the earlier occurrence, which it copies.", _same_token),
     Mistake("starting one query early (t from period − 1)", "the second copy starts at t = period: the query "
             "before it has no earlier occurrence.", _one_early),
     Mistake("averaging over every query, the first copy's too", "the first copy has no earlier occurrence: "
             "average over the second copy's queries only.", _every_query),
     Mistake("a transposed map (pattern[key, query])", "rows are queries: pattern[t, k] is where query t looks.",
             _transposed),
     Mistake("a sum instead of a mean", "the score is a share of attention: between 0 and 1.", _summed)],
    "query t of the second copy has its token at t − period too; the token after that one, at t − period + 1, "
    "is what comes next — an induction head looks there and copies it. The mean over t = period … 2·period − 1 "
    "is the head's score.",
    tolerance=1e-5, hint="try a 4 × 4 map with period 2 by hand: which two cells count?",
)  # fmt: skip
