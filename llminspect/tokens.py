"""Tokenization as data: ids, vocabulary strings, character offsets and special-token marks.

A ``Tokens`` holds what a tokenizer did to one text, in plain Python lists, so views and tests
never need the tokenizer again. Offsets are character spans into ``text`` ((0, 0) for special
tokens that cover no characters).

Example:
    >>> from transformers import AutoTokenizer
    >>> from llminspect.registry import ASSETS
    >>> toks = tokenize(AutoTokenizer.from_pretrained(ASSETS / "toy_seq2seq"), "happy bird")
    >>> toks.strings, toks.special
    (['happy', 'bird', '</s>'], [False, False, True])
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import EmptyInputError


@dataclass(frozen=True)
class Tokens:
    """One text as its tokenizer split it."""

    text: str
    ids: list[int]
    strings: list[str]  # vocabulary entries, e.g. 'Ġfox' or '##ing'
    offsets: list[tuple[int, int]]  # character span of each token in ``text``
    special: list[bool]  # True for tokens the tokenizer added (<s>, [CLS], ...)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def pieces(self) -> list[str]:
        """The characters of ``text`` each token covers ('' for special tokens)."""
        return [self.text[start:end] for start, end in self.offsets]

    def rows(self) -> list[dict]:
        """One dict per token (position, id, token, characters, special), e.g. for a table."""
        return [
            {"position": i, "id": token_id, "token": string, "characters": piece, "special": special}
            for i, (token_id, string, piece, special) in enumerate(
                zip(self.ids, self.strings, self.pieces, self.special, strict=True)
            )
        ]


def tokenize(tokenizer, text: str, add_special_tokens: bool = True) -> Tokens:
    """Tokenize ``text`` with a fast (Rust) transformers tokenizer and keep everything a view needs."""
    if not isinstance(text, str):
        raise TypeError(f"Expected text (a str), got {type(text).__name__}.")
    if text == "":
        raise EmptyInputError("The text is empty: give at least one character to tokenize.")
    encoded = tokenizer(
        text, add_special_tokens=add_special_tokens, return_offsets_mapping=True, return_special_tokens_mask=True
    )
    ids = list(encoded["input_ids"])
    return Tokens(
        text=text,
        ids=ids,
        strings=tokenizer.convert_ids_to_tokens(ids),
        offsets=[(int(start), int(end)) for start, end in encoded["offset_mapping"]],
        special=[bool(flag) for flag in encoded["special_tokens_mask"]],
    )


def from_ids(tokenizer, ids: list[int]) -> Tokens:
    """Tokens for ids a model produced (e.g. a generated target); ``text`` is their decoding.

    Each token's span is what it adds to the decoded text, found by decoding growing prefixes:
    that keeps the spaces a word-level decoder inserts and the characters byte-level pieces
    complete together (a partial UTF-8 token adds nothing until its last byte arrives).
    """
    ids = [int(i) for i in ids]
    offsets, text = [], ""
    for end in range(1, len(ids) + 1):
        grown = tokenizer.decode(ids[:end], skip_special_tokens=True)
        start = len(text) if grown.startswith(text) else len(os.path.commonprefix([text, grown]))
        offsets.append((min(start, len(grown)), len(grown)))
        text = grown
    special_ids = set(tokenizer.all_special_ids)
    return Tokens(
        text=text,
        ids=ids,
        strings=tokenizer.convert_ids_to_tokens(ids),
        offsets=offsets,
        special=[i in special_ids for i in ids],
    )
