"""Predict-then-reveal exercises: the right answer is recognised, a wrong one gets a hint, never the answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import embedded

from llminspect.errors import LLMInspectError
from llminspect.teaching import course_models
from llminspect.teaching.code_exercises import BY_NAME, CodeExercise
from llminspect.teaching.exercises import LESSONS, exercises
from llminspect.teaching.quiz import Exercise

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(autouse=True)
def shared_models(monkeypatch):
    """The session's embedded models (conftest), loaded once, instead of a fresh ``load(name, device="cpu")``
    for every answer an exercise computes (the same call, so the same model; loading itself is test_loading's)."""
    monkeypatch.setattr(course_models, "embedded", embedded)


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
        if isinstance(item, CodeExercise):  # its checks are test_code_exercises'; here: it is wired in
            assert quiz.check(number, None).verdict == "no answer"
            assert "def " in quiz.reveal(number).code and quiz.arguments(number) == item.built()[0].args
            continue
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
    assert quiz.check(5, "layer 28").verdict == quiz.check(5, 28).verdict == "right"  # a layer is its number
    assert quiz.check(5, 27).verdict == "not yet"  # no tolerance on a layer
    assert exercises("03").items[1].value() is True  # computed: the decoder's row of 'it' cannot see the end
    assert exercises("03").items[2].value() is False  # computed: under mean ablation head 1.5 drops out of the top 5
    assert exercises("07").check(2, "(b)").verdict == "right"
    assert exercises("02").check(1, "Cat").verdict == "right"  # centred; raw cosines would say truck
    entropy = exercises("05")
    assert entropy.check(1, entropy.items[0].value() + 0.4).verdict == "right"  # within the stated 0.5 bits
    assert entropy.check(1, "3.4 bits").verdict == "right"
    assert entropy.items[1].value() == 12  # generate's hidden top_k=50, then top-p
    with pytest.raises(LLMInspectError, match="exercises 1 to 5"):
        quiz.check(6, "x")
    with pytest.raises(LLMInspectError, match="is a prediction"):
        quiz.arguments(1)
    with pytest.raises(LLMInspectError, match="lessons with exercises"):
        exercises("99")


def test_feedback_is_escaped():
    feedback = exercises("07").check(1, None)
    feedback.text = "<img src=x onerror=alert(1)>"
    assert "<img" not in feedback._repr_html_()


def test_every_lesson_asks_its_exercises_in_order_and_the_code_ones_are_stubs_it_checks():
    """Each body check names the right kind of item: None for a prediction, the stub's function for code."""
    code_count = {}
    for lesson in sorted(LESSONS):
        path = next(NOTEBOOKS.glob(f"{lesson}_*.ipynb")) if lesson != "00" else NOTEBOOKS / "00_whole_journey.ipynb"
        cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        body = cells[:next(i for i, c in enumerate(cells) if c.strip() == "quiz")]  # before "Check yourself"
        items = exercises(lesson).items
        asked = [(int(n), guess) for cell in body for n, guess in re.findall(r"quiz\.check\((\d+), (\w+)\)", cell)]
        assert [n for n, _ in asked] == sorted(n for n, _ in asked), (lesson, asked)  # in order of appearance
        for number, guess in asked:
            item = items[number - 1]
            if guess == "None":
                assert isinstance(item, Exercise), (lesson, number)
            else:
                assert isinstance(item, CodeExercise) and item.signature.startswith(guess + "("), (lesson, number)
                stub = next(c for c in body if c.startswith(f"def {guess}("))
                assert stub.rstrip().endswith("..."), (lesson, guess)  # handed out unwritten
        written = {n for n, item in enumerate(items, 1) if isinstance(item, CodeExercise)}
        assert written <= {n for n, _ in asked}, lesson  # every code exercise is handed out in the body
        code_count[lesson] = len(written)
    assert all(code_count[lesson] >= 1 for lesson in ("01", "02", "03", "04", "05", "06", "07", "08"))
    assert sum(code_count.values()) == len(BY_NAME) >= 9  # each written once, in its lesson
