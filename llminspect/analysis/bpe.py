"""How a BPE vocabulary is learned: train a tiny one with the ``tokenizers`` library and watch the merges.

Byte-pair encoding starts from single characters. It counts every pair of neighbouring pieces in
the training text, merges the most frequent pair into a new piece, and counts again; the list of
merges, in order, *is* the tokenizer. Here the ``tokenizers`` library (the one behind every fast
Hugging Face tokenizer) trains on a few paragraphs, once per vocabulary size, so a learner sees a
word fall into fewer pieces as merges are added.

Example:
    >>> bpe = train_bpe(corpus(), merges=40)
    >>> bpe.merges[0]
    ('h', 'e')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llminspect.errors import InputError

CORPUS = Path(__file__).resolve().parent.parent / "assets" / "bpe_corpus.txt"


def corpus() -> list[str]:
    """The course's few paragraphs for training a tiny BPE."""
    return [p for p in CORPUS.read_text(encoding="utf-8").split("\n\n") if p.strip()]


@dataclass
class LearnedBPE:
    """A tokenizer trained by BPE: its merges in the order learned, and the trained ``tokenizers.Tokenizer``."""

    merges: list[tuple[str, str]]
    alphabet: list[str]
    tokenizer: object

    def split(self, text: str) -> list[str]:
        """The pieces of ``text`` with these merges."""
        return self.tokenizer.encode(text).tokens


def train_bpe(texts: list[str], merges: int = 100) -> LearnedBPE:
    """Learn ``merges`` merges from ``texts`` (words split at spaces and punctuation first)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if not texts or not any(t.strip() for t in texts):
        raise InputError("train_bpe needs some text to learn from, e.g. train_bpe(corpus()).")
    alphabet = sorted({c for t in texts for c in t if not c.isspace()})
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + merges, min_frequency=2, show_progress=False,
                                  initial_alphabet=alphabet)  # fmt: skip
    tokenizer.train_from_iterator(texts, trainer)
    learned = json.loads(tokenizer.to_str())["model"]["merges"]
    pairs = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in learned]
    return LearnedBPE(pairs, alphabet, tokenizer)


STEPS = (0, 5, 20, 50, 100, 200)


def merge_steps(texts: list[str], word: str, counts: tuple[int, ...] = STEPS) -> dict[int, list[str]]:
    """``word``'s pieces after the first n merges, for each n in ``counts``: a word falling into fewer pieces."""
    return {n: train_bpe(texts, n).split(word) for n in counts}
