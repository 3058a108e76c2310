"""Shared fixtures: the embedded models, loaded once per test session, always offline."""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `make test` sets it: torch's threads do not spin-wait
# quiz checks (teaching.progress) land in a file of this session's, never in the real home's progress
os.environ.setdefault("LLMINSPECT_PROGRESS", os.path.join(tempfile.mkdtemp(prefix="llminspect-"), "progress.jsonl"))

import pytest  # noqa: E402

import llminspect as li  # noqa: E402

_LOADED: dict = {}


def embedded(name: str):
    """An embedded model as an Inspector, loaded on first use and shared afterwards."""
    if name not in _LOADED:
        _LOADED[name] = li.load(name, device="cpu")
    return _LOADED[name]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Tiny random models of any zoo architecture (tests/zoo.py), each saved once per session as a folder.

    ``tiny("mistral", sliding_window=3)`` -> the folder; ``tokenizer="words"`` swaps in a 16-word tokenizer.
    """
    from zoo import ZOO, build

    species = {s.name: s for s in ZOO}
    root, made = tmp_path_factory.mktemp("tiny"), {}

    def make(name: str, tokenizer: str | None = None, **config):
        key = (name, tokenizer, tuple(sorted((k, repr(v)) for k, v in config.items())))
        if key not in made:
            made[key] = build(species[name], root / f"{name}-{len(made)}", tokenizer, **config)
        return made[key]

    return make


@pytest.fixture(scope="session")
def encoder():
    return embedded("encoder")


@pytest.fixture(scope="session")
def decoder():
    return embedded("decoder")


@pytest.fixture(scope="session")
def whisper():
    return embedded("encoder-decoder")


@pytest.fixture(scope="session")
def toy():
    return embedded("toy-seq2seq")


# Wall time of each lesson, headless (nbclient) and in the browser, printed after the run.
LESSON_SECONDS: dict[str, dict[str, float]] = {}
LESSON_GOAL_S, ALL_LESSONS_GOAL_S = 60, 300
# Each lesson runs once per session: the browser test (test_browser.py, collected first) leaves here the
# notebook as JupyterLab executed it, outputs and all, and test_notebooks.py checks the prose's claims on
# those outputs; where the browser did not run that lesson (no Chromium, ``-m "not browser"``, ``-k``, or a
# run that never finished), test_notebooks.py runs the lesson headless itself.
EXECUTED_LESSONS: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter):
    zoo = sys.modules.get("test_zoo") or sys.modules.get("tests.test_zoo")
    if zoo is not None and zoo.MATRIX:
        terminalreporter.section("model zoo: every capability per architecture (= equal to transformers, · refuses)")
        zoo.print_matrix(terminalreporter.write_line)
    if not LESSON_SECONDS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("lesson wall times (goal: each < 1 min headless, all < 5 min, on 2 CPU cores)")
    for lesson, times in sorted(LESSON_SECONDS.items()):
        cells = "  ".join(f"{kind} {seconds:5.1f} s" for kind, seconds in sorted(times.items()))
        # a lesson checked on its browser run has no headless time: its browser time (a little more) stands in
        slow = " (over the goal)" if times.get("headless", times.get("browser", 0)) > LESSON_GOAL_S else ""
        write(f"{lesson:<22} {cells}{slow}")
    for kind in ("headless", "browser"):
        total = sum(times[kind] for times in LESSON_SECONDS.values() if kind in times)
        if total:
            write(
                f"{'all lessons':<22} {kind} {total:5.1f} s"
                + (" (over the goal)" if total > ALL_LESSONS_GOAL_S else "")
            )

