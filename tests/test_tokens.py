"""Tokens as data, and the token table view (escaped, offline)."""

from __future__ import annotations

import re

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
    from llminspect.tokens import from_ids

    words = from_ids(
        toy.tokenizer, [toy.config.decoder_start_token_id] + toy.tokenizer(text_target="birdo gaja").input_ids
    )
    assert words.text == "birdo gaja" and words.pieces == ["", "birdo", " gaja", ""]
    assert words.special == [True, False, False, True]
    text = "Emoji 🙂 café"
    pieces = from_ids(decoder.tokenizer, decoder.tokenizer(text).input_ids)
    assert pieces.text == text and pieces.pieces == ["Em", "oji", " 🙂", " café"]
