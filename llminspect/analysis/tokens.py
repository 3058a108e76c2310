"""Tokenization as data: ids, vocabulary strings, offsets, bytes and special-token marks.

A ``Tokens`` holds what a tokenizer did to one text, in plain Python lists, so views and tests
never need the tokenizer again. Offsets are character spans into ``text`` ((0, 0) for special
tokens that cover no characters). ``token_bytes`` are the raw UTF-8 bytes each token stands for:
byte-level BPE (GPT-2, Llama 3, SmolLM2, Whisper) may cut one character, such as an emoji, into
several tokens, each a *partial* UTF-8 sequence that only makes a character with its neighbours.

Example:
    >>> from transformers import AutoTokenizer
    >>> from llminspect.models.registry import ASSETS
    >>> toks = tokenize(AutoTokenizer.from_pretrained(ASSETS / "toy_seq2seq"), "happy bird")
    >>> toks.strings, toks.special
    (['happy', 'bird', '</s>'], [False, False, True])
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field

from llminspect.errors import EmptyInputError, InputError

SPACE_SIGN = "␣"
_VISIBLE = {" ": SPACE_SIGN, "\n": "↵", "\t": "⇥", "\r": "␍"}
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece byte fallback, e.g. <0xF0>


@dataclass(frozen=True)
class Tokens:
    """One text as its tokenizer split it."""

    text: str
    ids: list[int]
    strings: list[str]  # vocabulary entries, e.g. 'Ġfox' or '##ing'
    offsets: list[tuple[int, int]]  # character span of each token in ``text``
    special: list[bool]  # True for tokens the tokenizer added (<s>, [CLS], ...)
    token_bytes: list[bytes] = field(default_factory=list)  # raw bytes of each token (b"" for special)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def pieces(self) -> list[str]:
        """The characters of ``text`` each token covers ('' for special tokens)."""
        return [self.text[start:end] for start, end in self.offsets]

    @property
    def partial(self) -> list[bool]:
        """True where a token's bytes are not valid UTF-8 on their own (part of a character)."""
        return [not _is_utf8(raw) for raw in self.token_bytes]

    @property
    def labels(self) -> list[str]:
        """What a view shows for each token: its text with spaces made visible (␣), or its bytes in hex.

        Example:
            >>> Tokens("a b", [1, 2], ["a", "Ġb"], [(0, 1), (1, 3)], [False, False], [b"a", b" b"]).labels
            ['a', '␣b']
        """
        labels = []
        for string, raw, special in zip(self.strings, self.token_bytes, self.special, strict=True):
            if special:
                labels.append(string)
            elif not _is_utf8(raw):
                labels.append(" ".join(f"{b:02X}" for b in raw))
            else:
                marker = "##" if string.startswith("##") else ""  # WordPiece: glued to the previous piece
                labels.append(marker + "".join(_VISIBLE.get(c, c) for c in raw.decode("utf-8")))
        return labels

    def rows(self) -> list[dict]:
        """One dict per token (position, id, token, characters, special), e.g. for a table."""
        return [
            {"position": i, "id": token_id, "token": string, "characters": piece, "special": special}
            for i, (token_id, string, piece, special) in enumerate(
                zip(self.ids, self.strings, self.pieces, self.special, strict=True)
            )
        ]


def check_text(text, role: str = "text") -> str:
    r"""``text`` if it is a str every tokenizer can read, else an ``InputError`` saying what is wrong.

    Lone surrogate code points (half of a UTF-16 pair, e.g. from a file decoded the wrong way)
    are not characters: no tokenizer can encode them.

    Example:
        >>> check_text("caf\u00e9")
        'café'
        >>> check_text("bad \ud800 half")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: The text has a lone surrogate U+D800 at character 4: half of a UTF-16 pair, ...
    """
    if not isinstance(text, str):
        raise InputError(f"Expected the {role} as a str, got {type(text).__name__}.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InputError(
            f"The {role} has a lone surrogate U+{ord(text[error.start]):04X} at character {error.start}: half of a "
            "UTF-16 pair, not a character. Remove it, or repair the text with "
            "text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')."
        ) from None
    return text


def encode(tokenizer, text: str, role: str = "text", **options) -> list[int]:
    """Token ids of user ``text`` (checked first), with the tokenizer's ``options`` (e.g. add_special_tokens).

    Example:
        >>> from transformers import AutoTokenizer
        >>> from llminspect.models.registry import ASSETS
        >>> encode(AutoTokenizer.from_pretrained(ASSETS / "toy_seq2seq"), "happy bird", add_special_tokens=False)
        [27, 6]
    """
    return list(tokenizer(check_text(text, role), **options).input_ids)


def single_token(tokenizer, text: str, role: str = "answer") -> int:
    """The id of ``text`` when it is exactly one token (an answer to follow), or a clear InputError.

    Example:
        >>> from transformers import AutoTokenizer
        >>> from llminspect.models.registry import ASSETS
        >>> single_token(AutoTokenizer.from_pretrained(ASSETS / "toy_seq2seq"), "bird")
        6
    """
    ids = encode(tokenizer, text, role, add_special_tokens=False)
    if len(ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise InputError(
            f"The {role} {text!r} is {len(ids)} tokens here ({pieces}); it must be one token. "
            f"Give a single token, e.g. {tokenizer.convert_tokens_to_string(pieces[:1])!r}."
        )
    return ids[0]


def tokenize(tokenizer, text: str, add_special_tokens: bool = True) -> Tokens:
    """Tokenize ``text`` with a fast (Rust) transformers tokenizer and keep everything a view needs."""
    check_text(text)
    if text == "":
        raise EmptyInputError("The text is empty: give at least one character to tokenize.")
    encoded = tokenizer(
        text, add_special_tokens=add_special_tokens, return_offsets_mapping=True, return_special_tokens_mask=True
    )
    ids = list(encoded["input_ids"])
    strings = tokenizer.convert_ids_to_tokens(ids)
    special = [bool(flag) for flag in encoded["special_tokens_mask"]]
    return Tokens(
        text=text,
        ids=ids,
        strings=strings,
        offsets=[(int(start), int(end)) for start, end in encoded["offset_mapping"]],
        special=special,
        token_bytes=bytes_of(tokenizer, strings, special),
    )


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """View labels of separate token ids (not one text): each decoded on its own, spaces shown as ␣.

    Example:
        >>> from transformers import AutoTokenizer
        >>> from llminspect.models.registry import model_directory
        >>> token_labels(AutoTokenizer.from_pretrained(model_directory("decoder")), [7042, 7042])
        ['␣Paris', '␣Paris']
    """
    ids = [int(i) for i in ids]
    return Tokens("", ids, *_pieces(tokenizer, ids, [(0, 0)] * len(ids))).labels


def _pieces(tokenizer, ids: list[int], offsets: list[tuple[int, int]]) -> tuple:
    """``Tokens`` fields after text and ids: strings, offsets, special flags, bytes (ids from a model, not text)."""
    strings = tokenizer.convert_ids_to_tokens(ids)
    special_ids = special_token_ids(tokenizer)
    special = [i in special_ids for i in ids]
    return strings, offsets, special, bytes_of(tokenizer, strings, special)


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
    return Tokens(text, ids, *_pieces(tokenizer, ids, offsets))


def special_token_ids(tokenizer) -> set[int]:
    """Ids of special tokens: the named ones (<s>, [CLS], ...) and added tokens flagged special
    (Whisper's <|startoftranscript|>, <|notimestamps|>, ...)."""
    added = getattr(tokenizer, "added_tokens_decoder", {})
    return set(tokenizer.all_special_ids) | {i for i, token in added.items() if getattr(token, "special", False)}


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the printable stand-in character -> the byte it stands for."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


@functools.lru_cache(maxsize=16)
def is_byte_level(tokenizer) -> bool:
    """Whether a fast tokenizer is byte-level BPE (its vocabulary spells bytes with stand-in characters).

    Reads only the decoder's own settings (serializing the whole tokenizer would cost ~50 ms).
    """
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    return decoder is not None and '"ByteLevel"' in json.dumps(json.loads(decoder.__getstate__()))


def bytes_of(tokenizer, strings: list[str], special: list[bool]) -> list[bytes]:
    """The raw bytes each vocabulary string stands for (b"" for special tokens).

    Byte-level vocabularies map every byte to a printable character ("Ġ" is the space byte);
    SentencePiece writes a space as "▁" and unknown bytes as "<0xF0>"; WordPiece marks a
    word-internal piece with "##", which is not part of its text.
    """
    byte_level = is_byte_level(tokenizer)
    decoder = _byte_decoder() if byte_level else {}
    out = []
    for string, is_special in zip(strings, special, strict=True):
        if is_special:
            out.append(b"")
        elif byte_level and all(c in decoder for c in string):
            out.append(bytes(decoder[c] for c in string))
        elif match := _BYTE_TOKEN.fullmatch(string):
            out.append(bytes([int(match.group(1), 16)]))
        else:
            text = string[2:] if string.startswith("##") else string
            out.append(text.replace("▁", " ").encode("utf-8"))
    return out


SPLIT_RULES = {
    "whitespace": "WhitespaceSplit",  # cut at spaces only: "child's" and "book." stay whole
    "whitespace + punctuation": "Whitespace",  # runs of letters/digits, or of punctuation
    "BERT pre-tokenizer": "BertPreTokenizer",  # whitespace, then every punctuation mark alone
}


def split_words(text: str, rule: str = "whitespace") -> Tokens:
    """Split ``text`` by a simple rule (no vocabulary, so no ids): the steps before subword tokenization.

    Example:
        >>> split_words("The child's book.", "whitespace + punctuation").strings
        ['The', 'child', "'", 's', 'book', '.']
    """
    from tokenizers import pre_tokenizers

    if rule not in SPLIT_RULES:
        raise InputError(f"Unknown split rule {rule!r}; choose one of {', '.join(SPLIT_RULES)}.")
    if check_text(text) == "":
        raise EmptyInputError("The text is empty: give at least one character to split.")
    pieces = getattr(pre_tokenizers, SPLIT_RULES[rule])().pre_tokenize_str(text)
    return Tokens(
        text=text,
        ids=[-1] * len(pieces),
        strings=[piece for piece, _ in pieces],
        offsets=[span for _, span in pieces],
        special=[False] * len(pieces),
        token_bytes=[piece.encode("utf-8") for piece, _ in pieces],
    )


def word_positions(tokens: Tokens, word: str) -> list[int]:
    """Positions of the tokens covering the first whole-word occurrence of ``word`` in ``tokens.text``."""
    pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")
    match = pattern.search(tokens.text) or re.compile(pattern.pattern, re.IGNORECASE).search(tokens.text)
    if match is None:
        raise InputError(f"The word {word!r} does not occur in {tokens.text!r}.")
    start, end = match.span()
    positions = [i for i, (a, b) in enumerate(tokens.offsets) if b > a and a < end and b > start]
    if not positions:
        raise InputError(f"No token covers {word!r} in {tokens.text!r}.")
    return positions
