"""Every lesson runs top to bottom, offline, without an error output, and shows the numbers its prose states."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import LESSON_SECONDS
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# What each lesson's prose says, and the pattern its outputs must show for the prose to be true.
CLAIMS = {
    "00_start_here": [("SmolLM2 puts 77 % on Paris", r"Paris\s+0\.77\d\d")],
    "01_tokenization": [("without healing, // gets only a few percent", r"// [1-9]\.\d%"),
                        ("after backing up, :// takes nearly all the probability", r":// 9\d\.\d%")],
    "02_embeddings": [("queen comes first, cosine about 0.7", r"king \+ woman - man .*?1 ␣queen 0\.7\d\d")],
    "03_attention": [("its 9 query heads share 3 key/value heads", r"9 query heads read 3 key/value heads")],
    "04_token_importance": [("the decoder says Paris with probability 0.77", r"target Paris .*?f\(input\) = 0\.77\d")],
    "05_sampling": [("make about 17 %, automate 16 %", r"make 1[67]\.\d% .*?automate 16\.\d%")],
    "06_layer_by_layer": [("the model's 134.5M parameters", r"134\.5M params")],
    "07_model_anatomy": [("Mixtral 46.7B, 12.9B active", r"Mixtral-8x7B .*? 46\.70B .*?12\.88B")],
}  # fmt: skip


def shown_text(notebook) -> str:
    """Everything the executed lesson shows as text: streams, tables and pages without tags, figure titles."""
    pieces = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            pieces.append(output.get("text", ""))
            data = output.get("data", {})
            pieces.append(re.sub(r"<[^>]+>", " ", data.get("text/html", "")))
            layout = data.get("application/vnd.plotly.v1+json", {}).get("layout", {})
            pieces.append(json.dumps(layout, ensure_ascii=False))
    return re.sub(r"\s+", " ", html.unescape(" ".join(pieces)))


def test_there_are_lessons():
    assert [p.name for p in NOTEBOOKS][:1] == ["00_start_here.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path, tmp_path, monkeypatch):
    # The converted models live in the real user cache: find it *before* HOME moves, or every lesson
    # would convert the models again into a cache under the temporary HOME (~18 s each).
    from llminspect.models.registry import cache_root

    monkeypatch.setenv("LLMINSPECT_CACHE", str(cache_root()))
    for variable in ("HOME", "IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    LESSON_SECONDS.setdefault(path.stem, {})["headless"] = time.perf_counter() - start
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "error" or (output.output_type == "stream" and output.name == "stderr")
    ]
    assert errors == [], errors
    shown = shown_text(notebook)
    for claim, pattern in CLAIMS[path.stem]:
        assert re.search(pattern, shown), f"the prose says {claim!r}, but the lesson does not show it"
