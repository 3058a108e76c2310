"""The install sets: a learner gets only what the lessons need, fully pinned; development adds its tools."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
DEV_TOOLS = {"pytest", "hypothesis", "playwright", "ruff", "nbmake", "pluggy", "iniconfig", "sortedcontainers"}
ROOM_ONLY = {"jupyterhub", "jupyterhub-idle-culler", "sqlalchemy", "alembic"}
ALWAYS_THERE = {"pip"}  # the venv brings it (setuptools it brings is too old for torch: pinned)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(file: str) -> dict[str, str]:
    lines = (REPO / file).read_text().splitlines()
    return {norm(name): version for name, _, version in (line.partition("==") for line in lines if "==" in line)}


def test_the_learner_set_has_no_development_or_room_package():
    lab = pins("requirements-lab.txt")
    assert not DEV_TOOLS & set(lab) and not ROOM_ONLY & set(lab)
    assert not set(lab) & set(pins("requirements-dev.txt")) and not set(lab) & set(pins("requirements-room.txt"))
    assert lab["torch"] == "2.13.0"


def test_the_whole_lock_is_the_three_sets_and_still_has_the_tools():
    assert [line for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("-r")] == [
        "-r requirements-lab.txt", "-r requirements-room.txt", "-r requirements-dev.txt"]  # fmt: skip
    assert DEV_TOOLS <= set(pins("requirements-dev.txt")) and ROOM_ONLY <= set(pins("requirements-room.txt"))


def closure_gaps(file: str, also: set[str] = frozenset()) -> list[str]:
    """Dependencies of the set's packages (as installed here, for this platform) that the set does not pin."""
    pinned = set(pins(file)) | also | ALWAYS_THERE
    gaps = []
    for name in sorted(set(pins(file))):
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            if norm(requirement.name) not in pinned:
                gaps.append(f"{name} needs {requirement}")
    return gaps


def test_every_dependency_of_the_learner_set_is_pinned_in_it():
    assert closure_gaps("requirements-lab.txt") == []


def test_every_dependency_of_the_room_and_dev_sets_is_pinned():
    lab = set(pins("requirements-lab.txt"))
    assert closure_gaps("requirements-room.txt", lab) == []
    assert closure_gaps("requirements-dev.txt", lab | set(pins("requirements-room.txt"))) == []


def test_what_is_installed_here_is_what_the_files_pin():
    for file in ("requirements-lab.txt", "requirements-room.txt", "requirements-dev.txt", "requirements-models.txt"):
        for name, version in pins(file).items():
            assert metadata.version(name).split("+")[0] == version, (file, name)
