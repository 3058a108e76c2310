"""Tokens as data, and the token table view (escaped, offline)."""

from __future__ import annotations

import re

import pytest

import llminspect as li


def test_decoder_tokens_offsets_cover_the_text(decoder):
    toks = decoder.tokenize("The child's coloring book.")
    assert toks.strings == ["The", "Ġchild", "'s", "Ġcoloring", "Ġbook", "."]
    assert "".join(toks.pieces) == "The child's coloring book."
    assert toks.ids == decoder.tokenizer("The child's coloring book.").input_ids
    assert not any(toks.special)


def test_encoder_marks_special_tokens(encoder):
    toks = encoder.tokenize("Hello, world!")
    assert toks.strings == ["[CLS]", "hello", ",", "world", "!", "[SEP]"]
    assert toks.special == [True, False, False, False, False, True]
    assert toks.pieces == ["", "Hello", ",", "world", "!", ""]
    assert toks.rows()[1] == {"position": 1, "id": 7592, "token": "hello", "characters": "Hello", "special": False}


def test_token_table_escapes_markup(decoder, tmp_path):
    text = "<script>alert('x')</script> &lt; fine"
    view = li.views.token_table(decoder.tokenize(text))
    html = view.to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&amp;lt;" in html  # the literal text "&lt;" shows as text, not as "<"
    assert not re.search(r"(src|href)=['\"]?https?://", html)
    saved = view.save(tmp_path / "tokens.html")
    assert saved.read_text(encoding="utf-8") == html


def test_tokens_of_generated_ids_keep_spaces_and_whole_characters(decoder, toy):
    from llminspect.analysis.tokens import from_ids

    words = from_ids(
        toy.tokenizer, [toy.config.decoder_start_token_id] + toy.tokenizer(text_target="birdo gaja").input_ids
    )
    assert words.text == "birdo gaja" and words.pieces == ["", "birdo", " gaja", ""]
    assert words.special == [True, False, False, True]
    text = "Emoji 🙂 café"
    pieces = from_ids(decoder.tokenizer, decoder.tokenizer(text).input_ids)
    assert pieces.text == text and pieces.pieces == ["Em", "oji", " 🙂", " café"]


TEXTS = ["I love 🦜 and 猫 in a café", "Привет мир · naïve Zoë", "def f(x):\n\treturn x  # 12345"]


def test_byte_level_token_bytes_rebuild_the_text_exactly(decoder, whisper):
    for model in (decoder, whisper):
        for text in TEXTS:
            toks = model.tokenize(text)
            real = [raw for raw, special in zip(toks.token_bytes, toks.special, strict=True) if not special]
            assert b"".join(real) == text.encode("utf-8")
            for raw, partial in zip(toks.token_bytes, toks.partial, strict=True):
                try:
                    raw.decode("utf-8")
                    assert not partial
                except UnicodeDecodeError:
                    assert partial


def test_a_parrot_is_three_tokens_of_partial_bytes(decoder):
    toks = decoder.tokenize("🦜 parrot")
    assert toks.token_bytes[:3] == [b"\xf0\x9f", b"\xa6", b"\x9c"]
    assert toks.partial == [True, True, True, False]
    assert toks.labels == ["F0 9F", "A6", "9C", "␣parrot"]


def test_labels_show_spaces_newlines_and_wordpiece_glue(encoder, decoder):
    assert decoder.tokenize("a b\n").labels == ["a", "␣b", "↵"]
    assert encoder.tokenize("colouring").labels == ["[CLS]", "colour", "##ing", "[SEP]"]
    assert encoder.tokenize("colouring").token_bytes == [b"", b"colour", b"ing", b""]


def test_sentencepiece_markers_and_byte_fallback():
    from tokenizers import Tokenizer, models

    from llminspect.analysis.tokens import bytes_of

    class FakeSentencePiece:  # a non-byte-level fast tokenizer, as Llama 2 / T5 have
        backend_tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))

    raw = bytes_of(FakeSentencePiece(), ["▁The", "<0xF0>", "</s>"], [False, False, True])
    assert raw == [b" The", b"\xf0", b""]


def test_rule_based_splits_match_plain_python():
    import re

    from llminspect.analysis.tokens import split_words

    text = "The child's coloring book. It costs $3.50!"
    assert split_words(text).strings == text.split()
    assert split_words(text, "whitespace + punctuation").strings == re.findall(r"\w+|[^\w\s]+", text)
    split = split_words(text, "whitespace + punctuation")
    assert split.pieces == split.strings and split.ids == [-1] * len(split)


def test_split_and_tokenize_errors(decoder):
    from llminspect.analysis.tokens import split_words
    from llminspect.errors import EmptyInputError, InputError

    with pytest.raises(InputError, match="choose one of"):
        split_words("a b", "by magic")
    with pytest.raises(EmptyInputError):
        split_words("")
    with pytest.raises(InputError, match="Expected the text as a str"):
        decoder.tokenize(42)
