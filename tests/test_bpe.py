"""A tiny BPE learned with the tokenizers library: its first merge is the most frequent pair, words shrink."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from llminspect.analysis.bpe import corpus, merge_steps, train_bpe
from llminspect.errors import InputError


def pair_counts(texts):
    """Neighbouring character pairs inside words, counted over the whole text (the first BPE round)."""
    counts = Counter()
    for word in re.findall(r"\w+|[^\w\s]+", " ".join(texts)):
        counts.update(zip(word, word[1:], strict=False))
    return counts


def test_first_merge_is_the_most_frequent_pair():
    bpe = train_bpe(corpus(), merges=50)
    counts = pair_counts(corpus())
    assert len(bpe.merges) == 50
    assert counts[bpe.merges[0]] == max(counts.values())
    assert all("".join(pair) in bpe.tokenizer.get_vocab() for pair in bpe.merges)


def test_words_fall_into_fewer_pieces_as_merges_grow():
    steps = merge_steps(corpus(), "readers")
    sizes = [len(pieces) for pieces in steps.values()]
    assert sizes[0] == len("readers") and sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]
    assert all("".join(pieces) == "readers" for pieces in steps.values())


def test_no_text_is_refused():
    with pytest.raises(InputError, match="some text"):
        train_bpe(["  "])
