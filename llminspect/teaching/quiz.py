"""A lesson's quiz: predictions (a guess, checked without giving the answer) and code exercises.

``Quiz.check(n, guess)`` says right, or not yet with a hint; for a code exercise the guess is the
learner's own function, run against the real model (``code_exercises``). ``Quiz.reveal(n)`` shows
the answer and why. Every check is recorded for the instructor's view of a room (``progress``).

Example:
    >>> quiz = Quiz("xx", [Exercise("Two plus two?", lambda: 4, "arithmetic.", "count on your fingers.")])
    >>> quiz.check(1, "4").verdict, quiz.check(1, 5).verdict, quiz.reveal(1).text
    ('right', 'not yet', 'Answer 1: 4 — arithmetic.')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from llminspect.errors import LLMInspectError
from llminspect.teaching import progress
from llminspect.teaching.code_exercises.checking import CodeExercise
from llminspect.views.exercises import feedback, questions


@dataclass
class Exercise:
    question: str
    answer: Callable[[], object]  # computed on first use
    why: str
    hint: str
    choices: list[str] = field(default_factory=list)  # multiple choice: the answer is a letter
    tolerance: float | None = None  # numbers: how far a guess may be (default: within 2 %)
    accept: tuple[str, ...] = ()  # other ways to write a right text answer ("LM head" for "lm_head")
    _value: object = None

    def value(self) -> object:
        if self._value is None:
            self._value = self.answer()
        return self._value

    def matches(self, guess) -> bool:
        expected = self.value()
        if isinstance(expected, bool) or isinstance(guess, bool):
            return str(guess).strip().lower() in {str(expected).lower(), {True: "yes", False: "no"}[bool(expected)]}
        if isinstance(expected, (int, float)):
            number = _number(guess)
            if number is None:
                return False
            if self.tolerance is not None:
                return abs(number - float(expected)) <= self.tolerance
            return math.isclose(number, float(expected), rel_tol=0.02, abs_tol=1e-9)
        return _normal(guess) in {_normal(expected), *(_normal(a) for a in self.accept)}


def _number(guess) -> float | None:
    """A guess as a number: 28, "28", "layer 28", "3.4 bits", "12,000" all count."""
    if isinstance(guess, (int, float)):
        return float(guess)
    found = re.search(r"-?\d[\d,]*(?:\.\d+)?", str(guess))
    return float(found.group().replace(",", "")) if found else None


def _normal(text) -> str:
    text = str(text).strip().strip("'\"").strip().lower().rstrip(")").lstrip("(")
    return re.sub(r"[\s_]+", " ", text).removeprefix("the ").strip()


@dataclass
class Feedback:
    """What ``check`` or ``reveal`` says; displays itself (``views.exercises``)."""

    verdict: str  # "right", "not yet", "no answer", "answer"; code: "mistake", "not written", "raised"
    text: str
    code: str = ""  # a revealed reference solution

    def _repr_html_(self) -> str:
        return feedback(self)


class Quiz:
    """A lesson's exercises; displays its questions in JupyterLab (``views.exercises``)."""

    def __init__(self, lesson: str, items: list[Exercise | CodeExercise]) -> None:
        self.lesson, self.items = lesson, items

    def _item(self, number: int) -> Exercise | CodeExercise:
        if not 1 <= number <= len(self.items):
            raise LLMInspectError(f"Lesson {self.lesson} has exercises 1 to {len(self.items)}; there is no {number}.")
        return self.items[number - 1]

    def _repr_html_(self) -> str:
        return questions(self)

    def check(self, number: int, guess) -> Feedback:
        """Right or not yet (with a hint); never shows the answer. A code exercise takes your function."""
        item = self._item(number)
        if isinstance(item, CodeExercise):
            found = item.check(number, guess)
            progress.record(self.lesson, number, "code", found.verdict, found.mistake)
            return Feedback(found.verdict, found.text)
        if guess is None:
            said = Feedback("no answer", f"Exercise {number}: replace None with your prediction. {item.question}")
        elif item.matches(guess):
            said = Feedback("right", f"✔ Exercise {number}: right. quiz.reveal({number}) says why.")
        else:
            said = Feedback("not yet", f"✘ Exercise {number}: not yet. Hint: {item.hint}")
        progress.record(self.lesson, number, "predict", said.verdict)
        return said

    def reveal(self, number: int) -> Feedback:
        """The answer and the reason (for a code exercise, a reference solution)."""
        item = self._item(number)
        if isinstance(item, CodeExercise):
            return Feedback("answer", *item.reveal(number))
        return Feedback("answer", f"Answer {number}: {item.value()} — {item.why}")

    def arguments(self, number: int) -> tuple:
        """What a code exercise's first case passes to your function, to try it yourself before checking."""
        item = self._item(number)
        if not isinstance(item, CodeExercise):
            raise LLMInspectError(f"Exercise {number} of lesson {self.lesson} is a prediction: it takes no function.")
        return item.built()[0].args
