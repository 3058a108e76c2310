"""The instructor's command: doctor, prepare, export."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from llminspect.teaching import cli

LESSONS = Path(__file__).resolve().parent.parent / "notebooks"


def test_doctor_is_green_here_and_red_with_a_fix_when_a_check_fails(capsys, monkeypatch):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "✔ model 'decoder': loads and traces (30 layers" in out and "8 of 8 checks passed." in out

    def broken():
        raise RuntimeError("missing in /somewhere: plotly")

    monkeypatch.setattr(cli, "_extensions", broken)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✘ JupyterLab extensions: RuntimeError: missing in /somewhere: plotly" in out
    assert "fix: reinstall with `make setup`" in out and "7 of 8 checks passed." in out


def test_prepare_is_safe_to_run_twice(capsys):
    assert cli.main(["prepare"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["prepare"]) == 0
    assert capsys.readouterr().out == first and first.count(" ready: ") == 4


@pytest.mark.slow
def test_export_writes_the_lesson_as_one_offline_page(tmp_path, capsys):
    assert cli.main(["export", str(LESSONS / "07_model_anatomy.ipynb"), str(tmp_path)]) == 0
    page = tmp_path / "07_model_anatomy.html"
    assert f"handout written: {page}" in capsys.readouterr().out
    text = page.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", text) and not re.search(r"<link[^>]*\bhref=.https?:", text)
    shown = html.unescape(re.sub(r"<[^>]+>", "", text))  # what a reader sees (code is highlighted in spans)
    assert "Where the parameters are" in shown and "memory_plan(big, gpu_gib=24" in shown  # prose and code
    assert shown.index("Where the parameters are") < shown.index("Sliding-window attention")  # in order
    assert text.count("Plotly.newPlot(") >= 9  # every figure of the lesson ...
    assert text.count("plotly.js v") == 1  # ... with plotly.js in the page once


def test_export_says_what_to_give_when_the_notebook_is_missing(capsys):
    assert cli.main(["export", "nope.ipynb", "out"]) == 2
    assert "give the path of a lesson" in capsys.readouterr().out
