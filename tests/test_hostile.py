"""Hostile text through the public API: a clear LLMInspectError or a correct, escaped view — never a crash.

Property-based (hypothesis, derandomized so CI is repeatable) over text mixing control
characters, right-to-left scripts, emoji with modifiers and joiners, combining marks and
HTML/JS fragments, plus the named extremes: empty, whitespace only, 100,000 characters.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import llminspect as li
from llminspect.analysis.sampling import Knobs
from llminspect.errors import EmptyInputError, InputError, InputTooLongError, WrongModalityError

ATTACKS = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "\"'><svg onload=alert(1)>", "&lt;b&gt;"]
PIECES = st.sampled_from(
    ATTACKS + ["مرحبا بالعالم", "שלום", "\u202e", "👩🏽‍💻", "🇫🇷", "é", "e\u0301\u0302", "\x00", "\x1b[31m", "\t\n\r",
               "\ufeff", "\u200b", "Ω", "𝔘𝔫𝔦", " ", "word"]
)  # fmt: skip
HOSTILE = st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=12).map("".join))
QUICK = settings(max_examples=30, deadline=None, derandomize=True)
SAFE_TAGS = {"div", "span", "table", "caption", "tr", "td", "th", "b", "code", "style", "details", "summary", "small"}
SAFE_TAGS |= {"br", "p"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def assert_inert(html: str) -> None:
    parsed = Tags()
    parsed.feed(html)
    assert parsed.tags <= SAFE_TAGS, parsed.tags - SAFE_TAGS
    assert not any(name.startswith("on") for name in parsed.attributes)
    for attack in ATTACKS[:3]:
        assert attack not in html


@QUICK
@given(text=HOSTILE)
@example(text="")
@example(text="   \n\t ")
@example(text="a" * 100_000)
@example(text=ATTACKS[0])
def test_decoder_traces_or_refuses_clearly(decoder, text):
    try:
        trace = decoder.trace(text)
    except (EmptyInputError, InputTooLongError) as error:
        assert str(error) and ("empty" in str(error) or "tokens" in str(error))
        return
    tokens = decoder.tokenize(text)
    assert trace.logits.shape == (len(tokens), decoder.config.vocab_size)
    assert torch.isfinite(trace.logits).all()
    assert_inert(li.views.tokens(tokens).body)


@QUICK
@given(text=HOSTILE)
@example(text="\u202e" + ATTACKS[1])
def test_encoder_token_views_stay_inert(encoder, text):
    try:
        tokens = encoder.tokenize(text)
    except EmptyInputError:
        return
    assert_inert(li.views.tokens(tokens).body)
    assert_inert(li.views.token_table(tokens).body)


@QUICK
@given(text=HOSTILE)
def test_walks_and_speech_models_refuse_cleanly(toy, whisper, text):
    with pytest.raises(WrongModalityError):
        whisper.trace(text or "x")
    try:
        walk = toy.walk(text, how="by hand")
    except (EmptyInputError, InputTooLongError):
        return
    assert torch.isfinite(walk.logits).all()
    assert_inert(li.views.steps_table(walk).body)


def test_one_hundred_thousand_characters_are_refused_before_the_forward_pass(decoder, monkeypatch):
    monkeypatch.setattr(decoder.model, "forward", lambda *a, **k: pytest.fail("the model ran"))
    with pytest.raises(InputTooLongError, match="reads at most 8192"):
        decoder.trace("word " * 20_000)


# Text that is not Unicode: lone surrogates (half of a UTF-16 pair) reach no tokenizer.
BROKEN = st.builds(
    lambda before, surrogate, after: before + surrogate + after,
    st.text(max_size=10),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(max_size=10),
)


@QUICK
@given(text=BROKEN)
@example(text="\ud83d\ude00")  # a surrogate *pair* written as two escapes: still not text
def test_lone_surrogates_get_a_clear_error_everywhere(decoder, toy, encoder, text):

    calls = [
        lambda: decoder.tokenize(text),
        lambda: decoder.trace(text),
        lambda: decoder.importance("The capital of France is", text),
        lambda: decoder.logit_lens("The capital of France is", answer=text),
        lambda: toy.trace("happy bird", text),
        lambda: toy.sampling(text, source="happy bird"),
        lambda: encoder.walk(text),
    ]
    for call in calls:
        with pytest.raises(InputError, match="lone surrogate U\\+D[89A-F][0-9A-F]{2} at character"):
            call()


KNOB_RANGES = {  # the documented ranges, written out again here
    "temperature": lambda t: t == 0 or 1e-3 <= t <= 100,
    "top_k": lambda k: k >= 0 and float(k).is_integer(),
    "top_p": lambda p: 0 < p <= 1,
    "min_p": lambda p: 0 <= p <= 1,
    "repetition_penalty": lambda r: 0.01 <= r <= 100,
}


def in_range(name: str, value: float) -> bool:
    return value == value and abs(value) != float("inf") and KNOB_RANGES[name](value)


@QUICK
@given(name=st.sampled_from(sorted(KNOB_RANGES)), value=st.floats(allow_nan=True, allow_infinity=True))
@example(name="temperature", value=-1.0)
@example(name="temperature", value=float("nan"))
@example(name="top_k", value=-5)
@example(name="repetition_penalty", value=0.0)
@example(name="top_p", value=0.0)
@example(name="temperature", value=1e-3)
@example(name="temperature", value=100.0)
@example(name="top_k", value=1e12)
@example(name="repetition_penalty", value=0.01)
@example(name="min_p", value=1.0)
def test_knobs_outside_their_range_are_refused_by_name(decoder, name, value):
    value = int(value) if name == "top_k" and in_range(name, value) else value
    if in_range(name, value):
        lab = decoder.sampling("The capital of France is")
        final = lab.stages(Knobs(**{name: value}))[-1].probabilities
        assert torch.isfinite(final).all() and abs(float(final.sum()) - 1) < 1e-6
    else:
        with pytest.raises(InputError, match=f"^{name}=.* is out of range: {name} must be"):
            Knobs(**{name: value})
