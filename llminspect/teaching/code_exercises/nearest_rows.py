"""Lesson 02: cosine similarity and the nearest rows of the decoder's embedding table.

Checked against ``torch.nn.functional.cosine_similarity`` on the real table (kitten and king, raw
and centred) and on a small table where one row is ten times longer than the others, so a dot
product and a cosine pick different neighbours.

Example:
    >>> import torch
    >>> nearest(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), 0, 2)
    [1, 2]
"""

from __future__ import annotations

import torch

from llminspect.analysis.embeddings import embedding_table, word_pieces
from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake


def nearest(table, index, k):
    """The `k` rows of `table` [vocabulary, hidden] with the highest cosine to row `index`, itself left out."""
    unit = table / table.norm(dim=-1, keepdim=True)  # every row scaled to length 1: cosine is then a dot product
    cosines = unit @ unit[index]
    cosines[index] = -2.0  # a row is always nearest to itself: below any cosine, so it is never picked
    return cosines.topk(k).indices.tolist()


def by_torch(table: torch.Tensor, index: int, k: int) -> list[int]:
    """The referee: torch's own cosine similarity, the row itself removed."""
    cosines = torch.nn.functional.cosine_similarity(table, table[index][None], dim=-1)
    cosines[index] = float("-inf")
    return cosines.topk(k).indices.tolist()


def long_row_table() -> torch.Tensor:
    """Six rows where row 5 points a little away from row 0 but is ten times longer than the rest."""
    generator = torch.Generator().manual_seed(2)
    table = torch.randn(6, 8, generator=generator)
    table[1] = table[0] + 0.3 * torch.randn(8, generator=generator)
    table[5] = 10 * (table[0] + 1.5 * torch.randn(8, generator=generator))
    return table


def cases() -> list[Case]:
    m = course_models.embedded("decoder")
    raw, centred = embedding_table(m), embedding_table(m, centred=True)
    kitten, king = (word_pieces(m, word)[0] for word in ("kitten", "king"))
    small = long_row_table()
    found = [("' kitten' in the decoder's table", raw, kitten, 5), ("' king' in the decoder's table", raw, king, 8),
             ("' kitten' in the centred table", centred, kitten, 5),
             ("a small table with one row ten times longer", small, 0, 3)]  # fmt: skip
    return [Case(label, (table, index, k), by_torch(table, index, k)) for label, table, index, k in found]


def _dot_product(table, index, k):
    scores = table @ table[index]
    scores[index] = float("-inf")
    return scores.topk(k).indices.tolist()


def _itself_included(table, index, k):
    unit = table / table.norm(dim=-1, keepdim=True)
    return (unit @ unit[index]).topk(k).indices.tolist()


def _farthest(table, index, k):
    unit = table / table.norm(dim=-1, keepdim=True)
    cosines = unit @ unit[index]
    cosines[index] = float("inf")
    return (-cosines).topk(k).indices.tolist()


def _euclidean(table, index, k):
    distances = (table - table[index]).norm(dim=-1)
    distances[index] = float("inf")
    return (-distances).topk(k).indices.tolist()


def _cosines_returned(table, index, k):
    unit = table / table.norm(dim=-1, keepdim=True)
    cosines = unit @ unit[index]
    cosines[index] = -2.0
    return cosines.topk(k).values.tolist()


EXERCISE = CodeExercise(
    "Write nearest(table, index, k): the k rows with the highest cosine similarity to row `index`, itself left "
    "out, nearest first. It is checked against torch's cosine_similarity on the decoder's table.",
    "nearest(table, index, k) -> list of row indices", nearest, cases,
    [Mistake("a dot product without normalising", "long rows get large dot products with everything: divide each "
             "row by its length first.", _dot_product),
     Mistake("leaving the row itself in", "a row's cosine with itself is 1: leave `index` out.", _itself_included),
     Mistake("sorting the wrong way (farthest first)", "nearest means the *highest* cosine.", _farthest),
     Mistake("Euclidean distance instead of cosine", "distance mixes length and direction; cosine compares "
             "directions only.", _euclidean),
     Mistake("returning the cosines instead of the row indices", "topk gives .values and .indices: return the "
             "indices.", _cosines_returned)],
    "scale every row to length 1, then a matrix product gives every cosine at once; set the row's own score below "
    "any cosine and take the top k indices.",
    tolerance=0.0, hint="decode your rows with decoder.tokenizer.decode(i): are they words near ' kitten'?",
)  # fmt: skip
