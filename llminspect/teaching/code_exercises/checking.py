"""A code exercise: the learner writes a function, the check runs it on cases built from the real model.

A ``CodeExercise`` holds a reference solution, the ``Case``s (arguments and the model's own numbers,
built on first use: the lesson's input, a long input, a masked position, a tie...) and the common
``Mistake``s, each written as the function a learner with that mistake would write. ``check`` runs
the learner's function on every case and says one of:

- **right**, with the largest difference on each case and the tolerance;
- **a named mistake** with a hint, when the learner's value equals what that mistake gives;
- **not yet**, saying which case differs and how (shape, inf/nan, largest gap), never the answer;
- **not written** (the body is still ``...``), or the learner's own error, short.

Example:
    >>> import torch
    >>> double = CodeExercise("Double every number.", "double(x)", lambda x: 2 * x,
    ...                       lambda: [Case("three numbers", (torch.tensor([1.0, 2.0, 3.0]),))],
    ...                       [Mistake("squared", "twice, not to the power two", lambda x: x * x)], "x + x.")
    >>> double.check(1, lambda x: x + x).verdict, double.check(1, lambda x: x ** 2).mistake
    ('right', 'squared')
"""

from __future__ import annotations

import ast
import copy
import inspect
import sysconfig
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llminspect.teaching.code_exercises.comparing import Difference, difference, expected_kind, largest_gap

PACKAGE = Path(__file__).resolve().parents[2]  # llminspect/: frames from here are the checker's, not the learner's
LIBRARIES = (str(PACKAGE), sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])


@dataclass
class Case:
    """One call of the learner's function: its arguments and what it must return (computed by the reference)."""

    label: str  # said to the learner: "the lesson's prompt (5 tokens)"
    args: tuple
    expected: object = None  # filled from the model's own numbers, or from the reference when left None
    driver: Callable | None = None  # calls the function itself (e.g. once per merge) instead of with ``args``

    def run(self, function):
        """What ``function`` gives on this case."""
        return self.driver(function) if self.driver is not None else function(*_copies(self.args))


@dataclass
class Mistake:
    """A common mistake: the function a learner who makes it would write, and a hint that does not give the answer."""

    name: str
    hint: str
    made: Callable  # same signature as the learner's function


@dataclass
class Verdict:
    """What one check found (``Feedback`` shows it)."""

    verdict: str  # "right", "mistake", "not yet", "not written", "raised", "no answer"
    text: str
    mistake: str = ""


@dataclass
class CodeExercise:
    """Write a function; it is checked against the real model's numbers, and common mistakes are named."""

    question: str
    signature: str  # e.g. "attention_head(q, k, v) -> (weights, output)"
    reference: Callable
    cases: Callable[[], list[Case]]
    mistakes: list[Mistake]
    why: str
    tolerance: float = 1e-5  # relative, and absolute unless ``absolute`` is set
    absolute: float | None = None
    parts: tuple[str, ...] = ()  # names of a returned tuple's parts
    hint: str = ""  # for a wrong answer no mistake explains
    if_not_finite: str = ""  # ... when that wrong answer holds inf or nan
    _built: list[Case] | None = field(default=None, repr=False)
    _mistaken: dict = field(default_factory=dict, repr=False)

    def built(self) -> list[Case]:
        """The cases, built from the model once; an expected value left None comes from the reference."""
        if self._built is None:
            cases = self.cases()
            for case in cases:
                if case.expected is None:
                    case.expected = case.run(self.reference)
            self._built = cases
        return self._built

    def check(self, number: int, function) -> Verdict:
        """Run ``function`` on every case and say what it got right, or which mistake it made."""
        name = self.signature.split("(")[0]
        if function is None:
            return Verdict("no answer", f"Exercise {number}: write {self.signature} in the cell above, run it, "
                                        f"then check it with quiz.check({number}, {name}).")  # fmt: skip
        if not callable(function):
            return Verdict("not yet", f"✘ Exercise {number}: pass the function itself (its name, no brackets); "
                                      f"this is {type(function).__name__}.")  # fmt: skip
        if is_stub(function):
            return Verdict("not written", f"Exercise {number}: not written yet — replace the ... in the body of "
                                          f"{name} with your code, run the cell, check again.")  # fmt: skip
        outcomes = []
        for case in self.built():
            try:
                got = case.run(function)
            except Exception as error:  # the learner's own error, shown short: never a crash of the checker
                return Verdict("raised", f"✘ Exercise {number}: your function raised on the case “{case.label}”:\n"
                                         f"{learner_traceback(error)}")  # fmt: skip
            outcomes.append((case, got, difference(got, case.expected, self.tolerance, self.parts, self.absolute)))
        if any(found is not None for _, _, found in outcomes):
            return self._wrong(number, outcomes)
        gaps = "; ".join(f"{case.label}: {_gap(largest_gap(got, case.expected))}" for case, got, _ in outcomes)
        return Verdict("right", f"✔ Exercise {number}: right on {len(outcomes)} cases — {gaps} (tolerance "
                                f"{self.tolerance:g}). quiz.reveal({number}) shows a reference solution.")  # fmt: skip

    def _wrong(self, number: int, outcomes: list[tuple[Case, object, Difference | None]]) -> Verdict:
        case, got, found = next(outcome for outcome in outcomes if outcome[2] is not None)
        where = f"✘ Exercise {number}: not yet. Case “{case.label}”:"
        if got is None:
            return Verdict("not yet", f"{where} your function returned None — does it end with return? It "
                                      f"should return {expected_kind(case.expected)}.")  # fmt: skip
        mistake = self.recognise(outcomes)
        if mistake is not None:
            return Verdict("mistake", f"{where} your result is what {mistake.name} gives. Hint: {mistake.hint}",
                           mistake.name)  # fmt: skip
        hint = self.if_not_finite if found.kind == "not finite" and self.if_not_finite else self.hint
        return Verdict("not yet", f"{where} {found.text}." + (f" Hint: {hint}" if hint else ""))

    def recognise(self, outcomes: list[tuple[Case, object, Difference | None]]) -> Mistake | None:
        """The mistake that gives the learner's result on every case: wrong where they are wrong, right where
        they are right (the cases they got wrong are tried first: most mistakes fail there at once)."""
        wrong = [(case, got) for case, got, found in outcomes if found is not None]
        right = [case for case, _, found in outcomes if found is None]
        for mistake in self.mistakes:
            if all(self._explains(mistake, case, got) for case, got in wrong) and all(
                    self._gives_the_right_answer(mistake, case) for case in right):  # fmt: skip
                return mistake
        return None

    def _mistaken_value(self, mistake: Mistake, case: Case):
        """What ``mistake`` gives on ``case`` (None if it cannot run there), computed once."""
        key = (id(case), mistake.name)
        if key not in self._mistaken:
            try:
                self._mistaken[key] = case.run(mistake.made)
            except Exception:  # a mistake that cannot even run on this case cannot be the learner's
                self._mistaken[key] = None
        return self._mistaken[key]

    def _gives_the_right_answer(self, mistake: Mistake, case: Case) -> bool:
        mistaken = self._mistaken_value(mistake, case)
        return mistaken is not None and difference(mistaken, case.expected, self.tolerance, self.parts,
                                                   self.absolute) is None  # fmt: skip

    def _explains(self, mistake: Mistake, case: Case, got) -> bool:
        """``mistake`` is wrong on ``case`` and gives what the learner got there."""
        mistaken = self._mistaken_value(mistake, case)
        if mistaken is None or self._gives_the_right_answer(mistake, case):
            return False  # this mistake cannot run here, or gives the right answer: it cannot explain a wrong one
        return difference(got, mistaken, max(self.tolerance, 1e-4), self.parts, self.absolute) is None

    def reveal(self, number: int) -> tuple[str, str]:
        """A reference solution (its source) and why it is right."""
        return f"Answer {number}: a reference solution — {self.why}", reference_source(self.reference)


def _gap(size: float) -> str:
    return "exact" if size == 0 else f"largest difference {size:.1e}"


def _copies(args: tuple) -> tuple:
    """Fresh copies of tensors and lists, so a function that edits its input in place cannot change a case."""
    import torch

    def fresh(value):
        if isinstance(value, torch.Tensor):
            return value.clone()
        if isinstance(value, (list, tuple, dict)):
            return copy.deepcopy(value)
        return value  # a model, a config, a function: shared, as the lesson shares them

    return tuple(fresh(a) for a in args)


def is_stub(function) -> bool:
    """True when the function's body is only a docstring and ``...`` or ``pass`` (what the lesson hands out)."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return False
    definition = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))), None)
    if not isinstance(definition, ast.FunctionDef):
        return False
    body = definition.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):  # fmt: skip
        body = body[1:]
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                           and s.value.value is Ellipsis) for s in body)  # fmt: skip


def learner_traceback(error: BaseException, lines: int = 6) -> str:
    """The learner's part of a traceback (frames outside llminspect), short, ending with the error itself."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not f.filename.startswith(LIBRARIES) and "site-packages" not in f.filename]  # fmt: skip
    shown = traceback.format_list(frames[-2:]) if frames else []
    text = "".join(shown) + "".join(traceback.format_exception_only(type(error), error))
    return "\n".join(text.rstrip().splitlines()[-lines:])


def reference_source(function) -> str:
    """The reference solution's source, as the learner would write it."""
    try:
        return textwrap.dedent(inspect.getsource(function)).strip()
    except (OSError, TypeError):
        return getattr(function, "__doc__", "") or repr(function)

