"""Predict-then-reveal exercises: the right answer is recognised, a wrong one gets a hint, never the answer."""

from __future__ import annotations

import pytest

from llminspect.errors import LLMInspectError
from llminspect.teaching.exercises import LESSONS, exercises


def wrong_guess(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 3 + 7
    return "z" if len(str(value)) == 1 else "something else"


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
    assert exercises("03").items[0].value() == 3  # the decoder's key/value heads, read from its config
    assert exercises("07").check(1, "(b)").verdict == "right"
    assert exercises("02").check(1, "yes").verdict == "right"
    with pytest.raises(LLMInspectError, match="exercises 1 to 2"):
        quiz.check(5, "x")
    with pytest.raises(LLMInspectError, match="lessons with exercises"):
        exercises("99")


def test_feedback_is_escaped():
    feedback = exercises("07").check(1, None)
    feedback.text = "<img src=x onerror=alert(1)>"
    assert "<img" not in feedback._repr_html_()
