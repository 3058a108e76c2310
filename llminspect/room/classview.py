"""The class at a glance, from what each learner's quiz recorded (``teaching.progress``): per
learner, the lesson they are on and, per exercise, checked, right or stuck; per exercise, how
much of the class has it right, so the instructor knows whom to help and when to move on.

Rules: an exercise is **right** once a check said "right"; **stuck** after ``STUCK_TRIES`` real
tries without it (a check with nothing written yet, "no answer" or "not written", is not a try);
otherwise **trying**. A learner's lesson is the notebook they used last (their Jupyter server's
sessions), else the lesson of their latest check.

Example:
    >>> lines = [{"time": 1, "lesson": "03", "exercise": 1, "kind": "predict", "verdict": "not yet"},
    ...          {"time": 2, "lesson": "03", "exercise": 1, "kind": "predict", "verdict": "right"},
    ...          {"time": 3, "lesson": "03", "exercise": 2, "kind": "code", "verdict": "mistake"}]
    >>> row = learner_row("ada", lines)
    >>> row.lesson, [(e.exercise, e.state, e.tries) for e in row.exercises]
    ('03', [(1, 'right', 2), (2, 'trying', 1)])
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

STUCK_TRIES = 3
NOT_TRIED = {"no answer", "not written"}
EXERCISES = re.compile(r"exercises\(\s*\\?[\"'](\w+)\\?[\"']")
CHECK = re.compile(r"quiz\.check\(\s*(\d+)")


@dataclass
class ExerciseState:
    """One learner's checks of one exercise."""

    lesson: str
    exercise: int
    kind: str
    tries: int = 0
    verdict: str = ""
    mistake: str = ""
    state: str = "trying"  # "right", "stuck" or "trying"
    last_time: float = 0.0


@dataclass
class LearnerRow:
    name: str
    lesson: str = ""
    notebook: str = ""  # the notebook they have open, relative to their home
    last_time: float = 0.0
    exercises: list[ExerciseState] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for item in self.exercises if item.state == state)

    def to_json(self) -> dict:
        return asdict(self) | {"right": self.count("right"), "stuck": self.count("stuck"),
                               "trying": self.count("trying")}  # fmt: skip


def _settle(item: ExerciseState, line: dict) -> None:
    verdict = str(line.get("verdict", ""))
    item.verdict, item.mistake = verdict, str(line.get("mistake", "") or "")
    item.last_time = max(item.last_time, float(line.get("time", 0) or 0))
    item.tries += verdict not in NOT_TRIED
    if verdict == "right":
        item.state = "right"
    elif item.state != "right":
        item.state = "stuck" if item.tries >= STUCK_TRIES else "trying"


def learner_row(name: str, lines: list[dict], sessions: list[dict] | None = None) -> LearnerRow:
    """One learner's row from their progress lines (oldest first) and their server's open sessions."""
    found: dict[tuple[str, int], ExerciseState] = {}
    for line in lines:
        try:
            key = (str(line["lesson"]), int(line["exercise"]))
        except (KeyError, TypeError, ValueError):
            continue
        item = found.setdefault(key, ExerciseState(key[0], key[1], str(line.get("kind", ""))))
        _settle(item, line)
    row = LearnerRow(name, exercises=sorted(found.values(), key=lambda e: (e.lesson, e.exercise)))
    if lines:
        latest = max((line for line in reversed(lines) if "lesson" in line), key=lambda line: line.get("time", 0),
                     default=None)  # the file's order breaks a tie of times
        row.lesson, row.last_time = (str(latest["lesson"]), float(latest.get("time", 0))) if latest else ("", 0.0)
    if sessions:
        opened = max(sessions, key=lambda s: s.get("last_activity", ""))
        row.notebook = str(opened.get("path", ""))
        row.lesson = lesson_of(row.notebook) or row.lesson
    return row


def lesson_of(notebook: str) -> str:
    """The lesson a notebook's name starts with: ``lessons/03_attention.ipynb`` -> ``03``."""
    found = re.match(r"(\d+)_", Path(notebook).name)
    return found.group(1) if found else ""


def class_summary(rows: list[LearnerRow], lesson_exercises: dict[str, list[int]]) -> dict[str, dict]:
    """Per lesson: who is on it, and per exercise how many learners have it right, are stuck or trying."""
    summary = {}
    seen = {(item.lesson, item.exercise) for row in rows for item in row.exercises}
    every = {lesson: set(numbers) for lesson, numbers in lesson_exercises.items()}
    for lesson, number in seen:
        every.setdefault(lesson, set()).add(number)
    for lesson, numbers in sorted(every.items()):
        per = {number: {"right": 0, "stuck": 0, "trying": 0, "stuck names": []} for number in sorted(numbers)}
        for row in rows:
            for item in row.exercises:
                if item.lesson == lesson and item.exercise in per:
                    per[item.exercise][item.state] += 1
                    if item.state == "stuck":
                        per[item.exercise]["stuck names"].append(row.name)
        summary[lesson] = {"on it": sorted(row.name for row in rows if row.lesson == lesson), "exercises": per}
    return summary


def lesson_exercises(lessons: Path) -> dict[str, list[int]]:
    """The exercises each lesson's notebook checks, read from the room's master copy of the lessons."""
    found: dict[str, set[int]] = {}
    for notebook in sorted(lessons.glob("*.ipynb")):
        text = notebook.read_text(encoding="utf-8", errors="replace")
        if (lesson := EXERCISES.search(text)) is not None:
            found.setdefault(lesson.group(1), set()).update(int(n) for n in CHECK.findall(text))
    return {lesson: sorted(numbers) for lesson, numbers in found.items()}
