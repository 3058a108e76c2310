"""Each lesson's exercises, in the order the lesson asks them: predictions and code to write.

``exercises("06")`` is lesson 06's quiz. ``quiz.check(1, guess)`` says right or not yet (with a
hint, never the answer); for a code exercise the guess is your own function, run against the real
model with the mistake named when it is wrong; ``quiz.reveal(1)`` shows the answer and why.

Example:
    >>> quiz = exercises("03")
    >>> quiz.check(5, 4).verdict, quiz.check(5, 3).verdict
    ('right', 'not yet')
"""

from __future__ import annotations

from llminspect.errors import LLMInspectError
from llminspect.teaching import course_models, predictions
from llminspect.teaching import exercises_circuits as circuits
from llminspect.teaching.code_exercises import BY_NAME
from llminspect.teaching.quiz import Exercise, Feedback, Quiz

# Lessons 09 and 10 get course_models.embedded as the quiz is made, so a test can hand in its own models.
LESSONS = {"00": predictions.lesson_00, "01": predictions.lesson_01, "02": predictions.lesson_02,
           "03": predictions.lesson_03, "04": predictions.lesson_04, "05": predictions.lesson_05,
           "06": predictions.lesson_06, "07": predictions.lesson_07, "08": predictions.lesson_08,
           "09": lambda: [Exercise(**entry) for entry in circuits.lesson_09(course_models.embedded)],
           "10": lambda: [Exercise(**entry) for entry in circuits.lesson_10(course_models.embedded)]}  # fmt: skip
# Where each code exercise comes in its lesson (its number); the predictions fill the other numbers, in order.
CODE = {"01": {1: "bpe_merge"}, "02": {2: "nearest_rows"}, "03": {1: "attention_head", 4: "head_off"},
        "04": {2: "integrated_gradients"}, "05": {3: "sampling_filter"}, "06": {2: "rms_norm", 4: "lens_row"},
        "07": {3: "block_parameters"}, "08": {2: "q8_0"}, "09": {3: "induction_score"}}  # fmt: skip


def items(lesson: str) -> list:
    """Lesson ``lesson``'s predictions and code exercises, numbered as the lesson asks them."""
    guesses, code = list(LESSONS[lesson]()), CODE.get(lesson, {})
    return [BY_NAME[code[number]] if number in code else guesses.pop(0)
            for number in range(1, len(guesses) + len(code) + 1)]  # fmt: skip


def exercises(lesson: str) -> Quiz:
    """The exercises of lesson ``lesson`` ("00" … "10"; "00" is the whole journey)."""
    if lesson not in LESSONS:
        raise LLMInspectError(f"No exercises for lesson {lesson!r}; lessons with exercises: {', '.join(LESSONS)}.")
    return Quiz(lesson, items(lesson))


__all__ = ["CODE", "LESSONS", "Exercise", "Feedback", "Quiz", "exercises", "items"]
