"""Predict, then reveal: short exercises at the end of each lesson, checked without showing the answer.

``exercises("06")`` lists a lesson's questions; ``quiz.check(1, guess)`` says right or not yet
(with a hint, never the answer); ``quiz.reveal(1)`` shows the answer and why. Answers that
depend on a model are computed from the model when first checked, so they stay true if a model
or a library changes.

Example:
    >>> quiz = exercises("03")
    >>> quiz.check(2, 4).verdict, quiz.check(2, 3).verdict
    ('right', 'not yet')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from llminspect.analysis.anatomy import anatomy, kv_cache_bytes, weight_bytes
from llminspect.analysis.sampling import Knobs
from llminspect.errors import LLMInspectError
from llminspect.inspector import load
from llminspect.views.exercises import feedback, questions


@dataclass
class Exercise:
    question: str
    answer: Callable[[], object]  # computed on first use
    why: str
    hint: str
    choices: list[str] = field(default_factory=list)  # multiple choice: the answer is a letter
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
            try:
                return math.isclose(float(guess), float(expected), rel_tol=0.02, abs_tol=1e-9)
            except (TypeError, ValueError):
                return False
        return _normal(guess) == _normal(expected)


def _normal(text) -> str:
    return str(text).strip().strip("'\"").strip().lower().rstrip(")").lstrip("(")


@dataclass
class Feedback:
    """What ``check`` or ``reveal`` says; displays itself (``views.exercises``)."""

    verdict: str  # "right", "not yet", "no answer", "answer"
    text: str

    def _repr_html_(self) -> str:
        return feedback(self)


class Quiz:
    """A lesson's exercises; displays its questions in JupyterLab (``views.exercises``)."""

    def __init__(self, lesson: str, items: list[Exercise]) -> None:
        self.lesson, self.items = lesson, items

    def _item(self, number: int) -> Exercise:
        if not 1 <= number <= len(self.items):
            raise LLMInspectError(f"Lesson {self.lesson} has exercises 1 to {len(self.items)}; there is no {number}.")
        return self.items[number - 1]

    def _repr_html_(self) -> str:
        return questions(self)

    def check(self, number: int, guess) -> Feedback:
        """Right or not yet (with a hint); never shows the answer."""
        item = self._item(number)
        if guess is None:
            return Feedback("no answer", f"Exercise {number}: replace None with your prediction. {item.question}")
        if item.matches(guess):
            return Feedback("right", f"✔ Exercise {number}: right. quiz.reveal({number}) says why.")
        return Feedback("not yet", f"✘ Exercise {number}: not yet. Hint: {item.hint}")

    def reveal(self, number: int) -> Feedback:
        """The answer and the reason."""
        item = self._item(number)
        return Feedback("answer", f"Answer {number}: {item.value()} — {item.why}")


def _model(name: str):
    return load(name, device="cpu")


def _lesson_01() -> list[Exercise]:
    return [
        Exercise("How many tokens does the decoder (SmolLM2) split ' unbelievably' into?",
                 lambda: len(_model("decoder").tokenize(" unbelievably")),
                 "byte-level BPE keeps frequent words whole and cuts rarer ones into a few frequent pieces.",
                 "try m.tokenize(' unbelievably') after predicting; count the chips."),
        Exercise("Which embedded tokenizer shows the parrot emoji 🦜 as raw bytes?", lambda: "c",
                 "SmolLM2's byte-level BPE has no token for 🦜, so it falls back to its 4 UTF-8 bytes.",
                 "WordPiece marks unknown characters as [UNK]; byte-level BPE never needs [UNK].",
                 ["a) the encoder (WordPiece)", "b) the toy translator (whole words)",
                  "c) the decoder (byte-level BPE)"]),
    ]  # fmt: skip


def _lesson_02() -> list[Exercise]:
    return [
        Exercise("Is the static (input embedding) vector of ' bank' the same in 'river bank' and 'bank account'?",
                 lambda: True, "the embedding table gives one vector per token id; context only enters in the layers.",
                 "where does the static vector come from — before or after the model reads the sentence?"),
        Exercise("Cosine similarity can be at most…?", lambda: 1,
                 "cosine is the dot product of two unit vectors: 1 when they point the same way.",
                 "it is the cosine of an angle."),
    ]  # fmt: skip


def _lesson_03() -> list[Exercise]:
    return [
        Exercise("How many key/value heads does each layer of the embedded decoder have?",
                 lambda: _model("decoder").config.num_key_value_heads,
                 "SmolLM2 uses grouped-query attention: 9 query heads share 3 key/value heads.",
                 "look for grouped-query attention in the lesson, or m.config."),
        Exercise("With a sliding window of 4, how many keys does query 10 attend to?", lambda: 4,
                 "a window of w keeps keys i − w < j ≤ i: exactly w keys once i ≥ w − 1.",
                 "count the dark squares of row 10 in the sliding-window mask."),
    ]  # fmt: skip


def _lesson_04() -> list[Exercise]:
    return [
        Exercise("Integrated gradients' scores add up to…?", lambda: "b",
                 "completeness: the attributions sum to f(input) − f(baseline), up to the convergence delta.",
                 "the lesson checks this with captum's convergence delta.",
                 ["a) 1", "b) f(input) − f(baseline)", "c) the number of tokens"]),
        Exercise("Do attention weights and integrated gradients always rank the same token first?", lambda: False,
                 "they measure different things; the lesson shows them disagree.",
                 "compare the methods side by side in the lesson."),
    ]  # fmt: skip


def _lesson_05() -> list[Exercise]:
    def kept_at_low_temperature() -> int:
        lab = _model("decoder").lab("The best thing about AI is its ability to")
        return lab.stages(Knobs(temperature=0.01))[-1].kept

    return [
        Exercise("At temperature 0.01 (no other knob), how many tokens keep a non-zero probability?",
                 kept_at_low_temperature,
                 "dividing the scores by 0.01 multiplies every gap to the top score by 100; in float32 a token "
                 "keeps a (tiny) probability while its gap stays under about 0.9 — nearly all the mass is on the top.",
                 "run the stages table with Knobs(temperature=0.01) after predicting."),
        Exercise("top_k=1 always writes the same text. Which other setting does too?", lambda: "a",
                 "temperature 0 means greedy decoding: always the top token.", "which knob removes all randomness?",
                 ["a) temperature 0", "b) top_p 1.0", "c) min_p 0"]),
    ]  # fmt: skip


def _lesson_06() -> list[Exercise]:
    def first_layer_with_paris() -> str:
        lens = _model("decoder").lens("The Eiffel Tower is in the city of", answer=" Paris")
        return lens.first_layer_with_answer_on_top() or "never"

    return [
        Exercise("Which step of the by-hand walk outputs the most numbers?",
                 lambda: max(_model("decoder").walk("The quick brown fox", how="by hand"),
                             key=lambda s: s.output.numel()).name,  # fmt: skip
                 "the LM head scores every one of the 49,152 vocabulary entries at every position.",
                 "which step's output has a vocabulary-sized dimension?"),
        Exercise("For 'The Eiffel Tower is in the city of', from which layer on is ' Paris' the lens's top token?",
                 first_layer_with_paris, "small models commit late: the answer surfaces only in the last layers.",
                 "run m.lens(text, answer=' Paris') and read the rank chart (answer like 'layer 12')."),
    ]  # fmt: skip


def _lesson_07() -> list[Exercise]:
    def gpus_for_llama_3_70b() -> int:
        a = anatomy("llama-3-70b")
        return math.ceil((weight_bytes(a, "int4") + kv_cache_bytes(a, 8192)) / (24 * 2**30 * 0.9))

    return [
        Exercise("Llama-3-8B has the same blocks as Mistral-7B. Why is it 0.8B bigger?", lambda: "b",
                 "its vocabulary grew from 32,000 to 128,256 tokens: 4x the embedding matrix and LM head.",
                 "compare models['llama-3-8b'].parts with models['mistral-7b'].parts.",
                 ["a) more layers", "b) a bigger vocabulary (embeddings and head)", "c) experts"]),
        Exercise("How many 24 GiB GPUs (10 % kept free) would Llama-3-70B need in int4 with 8,192 tokens of cache?",
                 gpus_for_llama_3_70b, "33 GiB of int4 weights plus 2.5 GiB of cache, over GPUs with 21.6 GiB usable.",
                 "weight_bytes(a, 'int4') + kv_cache_bytes(a, 8192), divided by 0.9 x 24 GiB, rounded up."),
    ]  # fmt: skip


LESSONS = {"01": _lesson_01, "02": _lesson_02, "03": _lesson_03, "04": _lesson_04, "05": _lesson_05,
           "06": _lesson_06, "07": _lesson_07}  # fmt: skip


def exercises(lesson: str) -> Quiz:
    """The exercises of lesson ``lesson`` ("01" … "07")."""
    if lesson not in LESSONS:
        raise LLMInspectError(f"No exercises for lesson {lesson!r}; lessons with exercises: {', '.join(LESSONS)}.")
    return Quiz(lesson, LESSONS[lesson]())
