"""Lesson 01: one BPE merge step, and a word split by applying every learned merge in order.

The referee is the ``tokenizers`` library: a tiny BPE trained on the course's paragraphs splits
*readers*, *lowest* and *tokenizer*; the learner's ``merge`` applied with the same 200 merges, in
the order learned, must give the same pieces. Small cases catch the usual slips: a run of three
equal pieces, a pair found only *across* pieces' letters, a merge at the very end.

Example:
    >>> merge(["l", "o", "w", "e", "s", "t"], ("s", "t"))
    ['l', 'o', 'w', 'e', 'st']
"""

from __future__ import annotations

from llminspect.analysis.bpe import corpus, train_bpe
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

WORDS = ("readers", "lowest", "tokenizer")
MERGES = 200


def merge(pieces, pair):
    """`pieces` with every neighbouring `pair` joined into one piece, read left to right."""
    merged, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == tuple(pair):
            merged.append(pieces[i] + pieces[i + 1])
            i += 2  # both pieces are used: the next pair starts after them
        else:
            merged.append(pieces[i])
            i += 1
    return merged


def split_with(merges: list[tuple[str, str]], word: str):
    """A driver: the word's letters, then the learner's `merge` with each learned merge in order."""

    def drive(function):
        pieces = list(word)
        for pair in merges:
            pieces = function(pieces, pair)
            if isinstance(pieces, tuple):
                pieces = list(pieces)
            if not isinstance(pieces, list):
                return pieces  # None or another type: reported as such
        return pieces

    return drive


def cases() -> list[Case]:
    bpe = train_bpe(corpus(), merges=MERGES)
    whole = [Case(f"'{word}' through the first {MERGES} learned merges", (), bpe.split(word),
                  split_with(bpe.merges, word)) for word in WORDS]  # fmt: skip
    return whole + [Case("three equal pieces in a row", (["a", "a", "a"], ("a", "a"))),
                    Case("a pair whose letters meet only across pieces", (["er", "e", "s"], ("r", "e"))),
                    Case("a pair that occurs twice", (["t", "o", "t", "o"], ("t", "o"))),
                    Case("a merge at the very end", (["l", "o", "w", "e", "s", "t"], ("s", "t"))),
                    Case("a pair that is not there", (["c", "a", "t"], ("d", "o")))]  # fmt: skip


def _overlapping(pieces, pair):
    merged = []
    for i, piece in enumerate(pieces):
        if i + 1 < len(pieces) and (piece, pieces[i + 1]) == tuple(pair):
            merged.append(piece + pieces[i + 1])
        elif not (i > 0 and (pieces[i - 1], piece) == tuple(pair)):
            merged.append(piece)
    return merged


def _text_replace(pieces, pair):
    return " ".join(pieces).replace(" ".join(pair), "".join(pair)).split(" ")


def _first_only(pieces, pair):
    for i in range(len(pieces) - 1):
        if (pieces[i], pieces[i + 1]) == tuple(pair):
            return pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2:]
    return list(pieces)


def _right_to_left(pieces, pair):
    return [piece[::-1] for piece in merge([p[::-1] for p in pieces[::-1]], (pair[1][::-1], pair[0][::-1]))][::-1]


def _last_piece_lost(pieces, pair):
    merged, i = [], 0
    while i < len(pieces) - 1:
        if (pieces[i], pieces[i + 1]) == tuple(pair):
            merged.append(pieces[i] + pieces[i + 1])
            i += 2
        else:
            merged.append(pieces[i])
            i += 1
    return merged


EXERCISE = CodeExercise(
    "Write one BPE merge step: merge(pieces, pair) joins every neighbouring occurrence of the pair, left to "
    "right. Applied with each learned merge in order, it must split words as the tokenizers library does.",
    "merge(pieces, pair) -> pieces", merge, cases,
    [Mistake("merging overlapping occurrences", "once two pieces are joined, the next pair starts after both of "
             "them: a a a becomes aa a.", _overlapping),
     Mistake("replacing text across piece boundaries", "joining pieces into a string lets a pair match letters "
             "from two different pieces; compare whole pieces.", _text_replace),
     Mistake("merging only the first occurrence", "a merge step joins the pair everywhere in the word.",
             _first_only),
     Mistake("reading right to left", "BPE reads the word left to right: in a a a, the first two join.",
             _right_to_left),
     Mistake("losing the last piece", "check the end of your loop: a piece with no right neighbour is kept.",
             _last_piece_lost)],
    "walk left to right; where the pair starts, emit the joined piece and skip both; otherwise keep the piece. "
    "The merges, applied in the order they were learned, are the tokenizer.",
    tolerance=0.0, hint="try merge(['a', 'a', 'a'], ('a', 'a')) and merge(['c', 'a', 't'], ('d', 'o')) by hand.",
)  # fmt: skip
