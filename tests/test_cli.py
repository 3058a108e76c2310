"""The instructor's command: doctor, prepare, export."""

from __future__ import annotations

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
def test_export_writes_offline_handouts(tmp_path, capsys):
    assert cli.main(["export", str(LESSONS / "07_model_anatomy.ipynb"), str(tmp_path)]) == 0
    pages = sorted(tmp_path.glob("07_model_anatomy_cell*.html"))
    assert len(pages) >= 10 and f"{len(pages)} views written" in capsys.readouterr().out  # 8 figures, table, plan…
    for page in pages:
        text = page.read_text()
        assert not re.search(r"<script[^>]*\bsrc=", text) and not re.search(r"<link[^>]*\bhref=.https?:", text)
    assert "Plotly.newPlot" in pages[1].read_text()  # the figure comes with plotly.js inside
    index = (tmp_path / "index.html").read_text()
    assert all(page.name in index for page in pages) and "Where the parameters are" in index


@pytest.mark.slow
def test_exported_attention_explorers_stay_interactive_without_a_kernel(tmp_path):
    cli.main(["export", str(LESSONS / "03_attention.ipynb"), str(tmp_path)])
    explorers = [p for p in tmp_path.glob("03_attention_cell*.html") if "startHandout(" in p.read_text()]
    assert len(explorers) >= 3  # encoder, "it" hunt, translation (each a page that draws itself offline)
    assert all(not re.search(r"https?://", page.read_text()) for page in explorers)
    assert "live widget(s) need a running kernel" in (tmp_path / "index.html").read_text()  # the masks slider


def test_export_says_what_to_give_when_the_notebook_is_missing(capsys):
    assert cli.main(["export", "nope.ipynb", "out"]) == 2
    assert "give the path of a lesson" in capsys.readouterr().out
