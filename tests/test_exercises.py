"""Predict-then-reveal exercises: the right answer is recognised, a wrong one gets a hint, never the answer."""

from __future__ import annotations

import pytest
from conftest import embedded

from llminspect.errors import LLMInspectError
from llminspect.teaching import exercises as exercises_module
from llminspect.teaching.exercises import LESSONS, exercises


@pytest.fixture(autouse=True)
def shared_models(monkeypatch):
    """The session's embedded models (conftest), loaded once, instead of a fresh ``load(name, device="cpu")``
    for every answer an exercise computes (the same call, so the same model; loading itself is test_loading's)."""
    monkeypatch.setattr(exercises_module, "_model", embedded)


def wrong_guess(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 3 + 7
    return "z" if len(str(value)) == 1 else "something else"


@pytest.mark.slow  # computes every lesson's answers on the real models (~20 s): the full suite runs it
@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_each_lesson_checks_answers_without_giving_them_away(lesson):
    quiz = exercises(lesson)
    assert quiz._repr_html_().count("<li>") == len(quiz.items) >= 2
    for number, item in enumerate(quiz.items, start=1):
        value = item.value()
        assert quiz.check(number, value).verdict == "right"
        wrong = quiz.check(number, wrong_guess(value))
        assert wrong.verdict == "not yet" and item.hint in wrong.text
        if len(str(value)) > 1:
            assert str(value) not in wrong.text
        assert quiz.check(number, None).verdict == "no answer"
        assert str(value) in quiz.reveal(number).text


def test_answers_come_from_the_models_and_forgiving_matching():
    quiz = exercises("06")
    assert quiz.check(1, " LM_HEAD ").verdict == "right"  # case and spaces do not matter
    assert quiz.check(1, "the LM head").verdict == "right"  # nor the usual ways of writing it
    assert quiz.check(3, "layer 28").verdict == quiz.check(3, 28).verdict == "right"  # a layer is its number
    assert quiz.check(3, 27).verdict == "not yet"  # no tolerance on a layer
    assert exercises("03").items[0].value() is True  # computed: the decoder's row of 'it' cannot see the end
    assert exercises("03").items[1].value() is False  # computed: under mean ablation head 1.5 drops out of the top 5
    assert exercises("07").check(2, "(b)").verdict == "right"
    assert exercises("02").check(1, "Cat").verdict == "right"  # centred; raw cosines would say truck
    entropy = exercises("05")
    assert entropy.check(1, entropy.items[0].value() + 0.4).verdict == "right"  # within the stated 0.5 bits
    assert entropy.check(1, "3.4 bits").verdict == "right"
    assert entropy.items[1].value() == 12  # generate's hidden top_k=50, then top-p
    with pytest.raises(LLMInspectError, match="exercises 1 to 3"):
        quiz.check(5, "x")
    with pytest.raises(LLMInspectError, match="lessons with exercises"):
        exercises("99")


def test_feedback_is_escaped():
    feedback = exercises("07").check(1, None)
    feedback.text = "<img src=x onerror=alert(1)>"
    assert "<img" not in feedback._repr_html_()
