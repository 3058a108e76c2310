"""Every lesson runs top to bottom, offline, without an error output, and shows the numbers its prose states.

The outputs checked are those of the lesson's browser run (test_browser.py) when there was one this session,
else of a headless run made here: each lesson runs once.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import EXECUTED_LESSONS, LESSON_SECONDS
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# What each lesson's prose says, and the pattern its outputs must show for the prose to be true.
CLAIMS = {
    "00_start_here": [
        ("SmolLM2 puts 77 % on Paris", r"Paris\s+0\.77\d\d"),
    ],
    "00_whole_journey": [
        ("the same text with and without the cache", r"with the cache: +(\S.*?) without the cache: +\1 layer 0"),
        ("the cache grows one position a step", r"\(1, 3, 5, 64\), \(1, 3, 6, 64\), \(1, 3, 7, 64\)"),
        ("birdo looks at bird, gaja at happy", r"<s> bird \(1\.00\) birdo .*? birdo happy \(0\.7\d\) gaja"),
    ],
    "01_tokenization": [
        ("without healing, // gets only a few percent", r"// [1-9]\.\d%"),
        ("after backing up, :// takes nearly all the probability", r":// 9\d\.\d%"),
        ("Llama 3's 128,256 pieces", r"llama-3-8b 128,256"),
        ("the first merge joins h and e", r"\[\('h', 'e'\), \('e', 'r'\)"),
        ("readers falls into fewer pieces", r"0 merges r e a d e r s .*?200 merges read ers"),
    ],
    "02_embeddings": [
        ("queen comes first, cosine about 0.7", r"king \+ woman - man .*?1 ␣queen 0\.7\d\d"),
        ("queen is 4th nearest to king, 0.62", r"4 ␣queen 0\.6[12]\d"),
        ("kitten nearer truck (0.52) than cat (0.43)", r"kitten–cat 0\.4[234] \| kitten–truck 0\.5[123]"),
        ("mean pooling 8 of 12, CLS 6", r"mean: paraphrase first for 8 of 12 \| cls: paraphrase first for 6 of 12"),
    ],
    "03_attention": [
        ("its 9 query heads share 3 key/value heads", r"9 query heads read 3 key/value heads"),
        (
            "the decoder's row of 'it' is identical",
            r"head 13\.8: 'it' puts 0\.7\d on 'animal'; row identical for tired and wide: True",
        ),
        ("encoder head 3.1: 0.64 (tired) to 0.27 (wide)", r"3\.1 0\.6[34]\d 0\.2[67]\d"),
        (
            "switching 13.8 off raises p(animal) a little",
            r"every head: p\(␣animal\) = 10\.\d% .*?head 13\.8 set to zero: p\(␣animal\) = 11\.\d%",
        ),
        ("layer 1 heads 5, 4, 3 matter most, then layer 24", r"0 1 5 -1\.\d+ 1 1 4 -0\.\d+ 2 1 3 -0\.\d+ 3 24"),
    ],
    "04_token_importance": [
        ("the decoder says Paris with probability 0.77", r"target Paris .*?f\(input\) = 0\.77\d"),
        ("The gets 0.61, France 0.03 from <|im_end|>", r"\(pad token\) +The \+0\.6[01] .*?␣France \+0\.0[23]"),
        ("from zeros capital 0.77, The 0.06", r"zeros +The \+0\.0[56] +␣capital \+0\.7[678]"),
        (
            "from <|endoftext|> capital 0.50, France 0.19",
            r"\(unk token\) The -0\.0\d +␣capital \+0\.[45]\d .*?␣France \+0\.1[89]",
        ),
        ("Paris all but vanishes after Italy", r"77\.\d% after France, 0\.0\d% after Italy"),
        ("France's own position through block 22", r"'␣France': its clean vector brings Paris back after blocks 0–22"),
        ("then the last token from block 23", r"'␣is': its clean vector brings Paris back after blocks 23–29"),
    ],
    "05_sampling": [
        ("make about 17 %, automate 16 %", r"make 1[67]\.\d% .*?automate 16\.\d%"),
        ("5.2 bits, 3.4 after temperature 0.7", r"model 5\.2\d 49,152 temperature 0\.7 3\.4\d 49,152"),
        (
            "generate's hidden top-k keeps 12, 13 without",
            r"top_k=50, top_p=0\.9.*?without the hidden top-k: 13 tokens kept .*?top-p 0\.9 2\.\d\d 12",
        ),
        ("the beam's whole text about 14 times likelier", r"greedy .*? -10\.0\d .*?beam search, 4 beams .*? -7\.4\d"),
        ("without the template the model ends the turn", r"no template +'<\|im_end\|>' 6\d%"),
        ("a French system prompt lifts La and Le", r"own system prompt .*?'La' 2\d% +'Le' 1\d%"),
    ],
    "06_layer_by_layer": [
        ("the model's 134.5M parameters", r"134\.5M params"),
        (
            "the lens's bottom row reads <filename> after France",
            r"bottom row: \['The', '␣capital', '␣of', '<filename>', '␣is'\]",
        ),
        (
            "thousands through layer 22, 396th after 23, first after 29",
            r"after layers 15, 22, 23, 29: \[2\d\d\d, 2\d\d\d, 39\d, 1\]",
        ),
        ("every opened step equals the model", r"(= .*?largest gap \d\.\de-0[5-9].*?){6}"),
    ],
    "07_model_anatomy": [
        ("Mixtral 46.7B, 12.9B active", r"Mixtral-8x7B .*? 46\.70B .*?12\.88B"),
        (
            "two thirds for full attention, 78-82 % with GQA",
            r"llama-2-7b: MLP 64 % \| llama-2-13b: MLP 65 % \| mistral-7b: MLP 78 % \| llama-2-70b: MLP 82 %",
        ),
        ("a window's reach grows 4,095 a layer", r"32 layers: 131,040 tokens back"),
    ],
    "08_precision": [
        (
            "the shipped Q4_1 blocks are the float32 weights, 5 bits",
            r"Q4_1 +540 KiB +5\.0 bits/weight +largest error 0 ",
        ),
        (
            "bfloat16 errs up to 3e-3, float16 5e-4",
            r"bfloat16 .*?largest error 0\.00[23]\d .*?float16 .*?largest error 0\.000[45]",
        ),
        ("Q4_0 errs 16 times Q8_0", r"Q8_0 .*?rms 0\.001\b.*?Q4_0 .*?rms 0\.01[5-7]"),
        (
            "float16 keeps every top token, Q4_0 about 58 %",
            r"float16 \d+ MiB 0\.000\d 100% .*?Q4_0 \d+ MiB 1\.\d+ 5\d%",
        ),
        ("the sink reaches 22,517", r"largest \|activation\|: 22,\d\d\d for 'The'"),
    ],
}


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
    notebook = executed(path, tmp_path, monkeypatch)
    unrun = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and cell.source.strip() and cell.execution_count is None]  # fmt: skip
    assert unrun == [], f"cells {unrun} never ran"
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


def executed(path, tmp_path, monkeypatch):
    """The lesson with its outputs: as the browser test ran it in JupyterLab, or else run here, headless.

    Each lesson runs once a session: test_browser.py, collected before this file, leaves its run in
    ``EXECUTED_LESSONS``. Without it (no Chromium, browser tests deselected, or a browser run that never
    finished) the lesson runs here with nbclient, offline, in a temporary HOME.
    """
    saved = EXECUTED_LESSONS.pop(path.stem, None)
    if saved is not None:  # the .ipynb text JupyterLab would have saved
        return nbformat.reads(saved, as_version=4)
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
    return notebook
