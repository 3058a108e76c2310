"""Every lesson in a real browser: JupyterLab + Debian Chromium, the network blocked and watched.

For each notebook: run all cells, then check that every cell ran and none wrote an error, every
ipywidget and every plotly figure was drawn, bertviz views drew their SVG, moving a slider changes
what its widget shows, and no request left this machine. Screenshots go to ``build/screenshots/``.
The executed notebook is left in ``conftest.EXECUTED_LESSONS`` for test_notebooks.py, which checks
the prose's claims on these outputs instead of running the lesson a second time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import EXECUTED_LESSONS, LESSON_SECONDS
from lab_browser import (
    BLOCK_NETWORK,
    CHROMIUM,
    DOM_REPORT,
    NOTEBOOK_JSON,
    STATE,
    Requests,
    close_notebook,
    nudge_first_slider,
    output_text,
    run_notebook,
    running_lab,
    step_the_journey,
    switch_explorer_head,
    unrun_cells,
    write_in_cell,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ROOT / "build" / "screenshots"

pytestmark = [pytest.mark.slow, pytest.mark.browser]
if not CHROMIUM.exists():
    reason = f"no Chromium at {CHROMIUM}: run scripts/install_chromium.sh (make test does)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)  # CI must run these, never skip them
    pytestmark.append(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(ROOT / "notebooks", tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", BLOCK_NETWORK]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab_page(lab, browser):
    """One page for every lesson: JupyterLab loads once, each lesson opens in it with a kernel of its own."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_lesson_runs_in_the_browser_offline(notebook, lab, lab_page):
    page, requests = lab_page, Requests()
    page.on("request", requests.record)
    try:
        lesson_runs_in_the_browser(page, lab, notebook, requests)
    finally:
        page.remove_listener("request", requests.record)
        close_notebook(page)


def lesson_runs_in_the_browser(page, lab, notebook: Path, requests: Requests) -> None:
    seconds = run_notebook(page, lab, notebook.name)
    LESSON_SECONDS.setdefault(notebook.stem, {})["browser"] = seconds
    # this run's outputs are the ones test_notebooks.py checks the lesson's claims on (no second, headless run)
    EXECUTED_LESSONS[notebook.stem] = page.evaluate(NOTEBOOK_JSON)
    prompts = page.evaluate(STATE)["prompts"]
    assert unrun_cells(prompts) == [], f"run-all stopped: code cells {unrun_cells(prompts)} never ran: {prompts}"
    report = page.evaluate(DOM_REPORT)
    print(
        f"\n{notebook.stem}: all cells ran in the browser in {seconds:.1f} s; drawn: {report['widgets']} widgets, "
        f"{report['plotly']} plotly figures, {report['bertviz']} bertviz views, {report['sliders']} sliders"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 6000})
    page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer').forEach(p => p.scrollTop = 0)")
    page.wait_for_timeout(400)  # the taller page lays out again
    page.screenshot(path=str(SHOTS / f"{notebook.stem}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})

    assert report["stderr"] == [], report["stderr"]
    assert report["widgetErrors"] == 0 and report["widgetsDrawn"] == report["widgets"], report
    assert report["plotlyDrawn"] == report["plotly"], report
    assert report["bertvizDrawn"] == report["bertviz"], report
    if report["sliders"]:
        before, after = nudge_first_slider(page)
        assert after != before, "moving the first slider changed nothing"
    if report["explorers"]:
        assert report["clientDrawn"] >= report["explorers"], report
        before, after = switch_explorer_head(page)
        assert after != before, "picking another head in the attention explorer changed nothing"
    if notebook.stem == "00_whole_journey":  # the step a kernel computed while the page was read, then back
        assert step_the_journey(page) == ("The capital of France is Paris", "The capital of France is Paris.")
        assert step_the_journey(page, "back") == ("The capital of France is Paris.", "The capital of France is Paris")
    if notebook.stem in WRITTEN_IN_THE_BROWSER:
        write_exercises_as_a_learner(page, WRITTEN_IN_THE_BROWSER[notebook.stem])
    assert requests.outside == [], requests.outside
    assert any(f"127.0.0.1:{lab.port}" in url for url in requests.urls)


# A learner fills in a code exercise in JupyterLab: first with a common slip, then right.
BLOCK_SLIP = """def block_parameters(config):
    hidden, inner = config.hidden_size, config.intermediate_size
    return 4 * hidden * hidden + 3 * hidden * inner + 2 * hidden
"""
BLOCK_RIGHT = """def block_parameters(config):
    hidden, heads, kv = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
    d = hidden // heads
    attention = 2 * hidden * heads * d + 2 * hidden * kv * d
    if getattr(config, "attention_bias", False):
        attention += hidden + 2 * kv * d + hidden
    mlp = 3 * hidden * config.intermediate_size
    if getattr(config, "mlp_bias", False):
        mlp += 2 * config.intermediate_size + hidden
    return attention + mlp + 2 * hidden
"""
WRITTEN_IN_THE_BROWSER = {"07_model_anatomy": [
    (BLOCK_SLIP, "forgetting grouped-query attention"), (BLOCK_RIGHT, "right on 5 cases")]}


def write_exercises_as_a_learner(page, attempts):
    """Type each attempt into the exercise's stub cell, run it and its check, and read the verdict shown."""
    for source, verdict in attempts:
        index = write_in_cell(page, source.split("(")[0] + "(", source)
        shown = output_text(page, index + 1)
        assert verdict in shown, shown


HANDOUT_CELLS = [  # every kind of view a lesson hands out, on the quick models (lesson 03's own: test_notebooks)
    ("markdown", "# A handout\n\n## Every view, with the network off\n\nProse stays in order."),
    ("code", "import llminspect as li\nfrom llminspect.analysis import embeddings as emb\n\n"
             "toy, encoder = li.load('toy-seq2seq'), li.load('encoder')\n"
             "translated, read = toy.trace('happy bird eats small mouse'), encoder.trace('The quick brown fox jumps')"),
    ("code", "li.views.bertviz(read, view='head')"),
    ("code", "li.labs.attention(read, layer=2, head=0)"),
    ("code", "li.labs.attention(translated, part='cross-attention', layer=1, head='mean')"),
    ("code", "li.labs.attention(translated, part='decoder self-attention', layer=0)"),
    ("code", "words = ['cat', 'dog', 'car', 'happy', 'sad']\n"
             "li.views.similarity(words, emb.cosine_matrix(emb.word_vectors(encoder, words)[1]), 'cosine')"),
    ("code", "li.views.importance(toy.importance('happy bird eats small mouse'))"),
    ("code", "li.views.kv_sharing(9, 3)"),
    ("code", "li.views.layer_similarity(emb.word_in_contexts(encoder, 'bank', ['a river bank', 'a bank account']))"),
]


def test_a_handout_draws_every_view_with_the_network_off(browser, tmp_path):
    import nbformat

    from llminspect.teaching.handout import handout

    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    book = nbformat.v4.new_notebook(cells=[make[kind](text) for kind, text in HANDOUT_CELLS])
    nbformat.write(book, tmp_path / "views.ipynb")
    page_file = handout(tmp_path / "views.ipynb", tmp_path / "out")
    text = page_file.read_text()
    assert text.count("plotly.js v") == 1 and text.count("RequireJS 2.3.6") == 1  # plotly, bertviz's loader: once
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests, errors = Requests(), []
    page.on("request", requests.record)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(page_file.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.plotly-graph-div .main-svg').length >= "
                           "document.querySelectorAll('.plotly-graph-div').length", timeout=60_000)  # fmt: skip
    page.wait_for_function("() => [...document.querySelectorAll('iframe')].filter(f => f.contentDocument && "
                           "Number(f.contentDocument.getElementById('explorer')?.dataset.drawn) > 0).length >= 3",
                           timeout=60_000)  # fmt: skip
    report = page.evaluate("""() => ({
        figures: document.querySelectorAll('.plotly-graph-div').length,
        drawn: [...document.querySelectorAll('.plotly-graph-div')].filter(d => d.querySelector('.main-svg')).length,
        explorers: [...document.querySelectorAll('iframe')].filter(f =>
            f.contentDocument && Number(f.contentDocument.getElementById('explorer')?.dataset.drawn) > 0).length,
        bertviz: document.querySelectorAll('#bertviz svg, [id^=bertviz] svg').length,
        prose: document.body.innerText.includes('Every view, with the network off'),
    })""")
    assert report["figures"] >= 4 and report["drawn"] == report["figures"], report
    assert report["explorers"] >= 3 and report["bertviz"] >= 1 and report["prose"], report
    assert errors == [], errors
    assert [u for u in requests.outside if not u.startswith(("file:", "blob:", "data:"))] == []
    page.close()


def test_a_saved_attention_explorer_works_in_the_browser_with_no_kernel(browser, toy, tmp_path):
    import llminspect as li

    page_file = li.views.save(li.labs.attention(toy.trace("happy bird eats small mouse"), layer=1),
                              tmp_path / "explorer.html")  # fmt: skip
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requests = Requests()
    page.on("request", requests.record)
    page.goto(page_file.as_uri())
    page.wait_for_selector(".li-explorer [data-drawn], .li-explorer canvas.li-detail", timeout=30_000)
    page.wait_for_function("() => Number(document.getElementById('explorer').dataset.drawn) > 0", timeout=30_000)
    before, after = switch_explorer_head(page)
    assert after != before, "picking another head in a saved page changed nothing"
    page.locator(".li-explorer select").first.select_option("cross-attention")
    page.wait_for_timeout(300)
    assert "cross-attention, layer 1" in page.locator(".li-title").inner_text()
    assert [u for u in requests.outside if not u.startswith("file:")] == []
    page.close()
