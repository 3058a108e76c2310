"""A learner's home at each server start: their own copy of the lessons (first start only) and the
memory notice; then the Jupyter server itself.

The spawner starts ``python -m llminspect.room.learners LESSONS SERVER-COMMAND...`` already as
the learner, so every file it writes is theirs and nothing runs as root inside a home a learner
controls. Edits are the learner's: a restart never copies the lessons again over ``~/lessons``.

Example:
    >>> import tempfile
    >>> master, home = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> _ = (master / "00_first.ipynb").write_text("{}")
    >>> give_lessons(master, home)
    True
    >>> give_lessons(master, home)  # the second start keeps their copy
    False
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from llminspect.room.memory import install_notice

LESSONS = "lessons"


def give_lessons(master: Path, home: Path) -> bool:
    """Copy the lessons into ``home/lessons`` unless the learner already has them."""
    target = home / LESSONS
    if target.exists():
        return False
    shutil.copytree(master, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return True


def main(argv: list[str]) -> None:
    """``LESSONS COMMAND...``: prepare ``$HOME``, then become ``COMMAND``."""
    master, command = Path(argv[0]), argv[1:]
    home = Path(os.environ["HOME"])
    give_lessons(master, home)
    install_notice(home)
    os.chdir(home)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
