"""What a learner has checked: one JSON line per ``quiz.check``, in the learner's own home.

The instructor's view of a room (which lesson each learner is on, which exercises they got right
or are stuck on) reads these files; nothing here ever stops a check: a full disk or a read-only
home loses the line, never the learner's feedback. ``LLMINSPECT_PROGRESS`` moves the file.

Example:
    >>> import os, tempfile
    >>> os.environ["LLMINSPECT_PROGRESS"] = os.path.join(tempfile.mkdtemp(), "progress.jsonl")
    >>> record("03", 2, "predict", "right")
    >>> [(line["lesson"], line["exercise"], line["verdict"]) for line in read()]
    [('03', 2, 'right')]
    >>> del os.environ["LLMINSPECT_PROGRESS"]
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

VERSION = 1  # the line format: readers skip lines of a version they do not know


def progress_file() -> Path:
    """Where this learner's checks are written (``~/.llminspect/progress.jsonl`` unless moved)."""
    moved = os.environ.get("LLMINSPECT_PROGRESS")
    return Path(moved) if moved else Path.home() / ".llminspect" / "progress.jsonl"


def record(lesson: str, exercise: int, kind: str, verdict: str, mistake: str = "") -> None:
    """Append one check: ``kind`` is "predict" or "code", ``mistake`` names a recognised mistake."""
    line = {"v": VERSION, "time": round(time.time(), 3), "lesson": lesson, "exercise": exercise, "kind": kind,
            "verdict": verdict, "mistake": mistake}  # fmt: skip
    try:
        path = progress_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    except OSError:
        pass  # a full disk or a read-only home must not turn feedback into a traceback


def read(path: Path | None = None) -> list[dict]:
    """Every check recorded in ``path`` (this learner's file by default), oldest first; bad lines skipped."""
    path = path or progress_file()
    try:
        return parse(path.read_bytes())
    except OSError:
        return []


def parse(text: bytes) -> list[dict]:
    """The checks in a progress file's bytes: lines that are not JSON, or of another version, are skipped."""
    lines = []
    for raw in text.decode("utf-8", errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("v") == VERSION:
            lines.append(line)
    return lines
