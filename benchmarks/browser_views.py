"""What a learner waits for, measured in real Chromium through JupyterLab: views' paint times and bytes.

For decoder traces of 128, 512 and 1,024 tokens:
- the attention explorer (``li.labs.attention``): bytes received on the kernel websocket and
  seconds until painted when the cell runs (first paint), and for each head switch in the page;
- bertviz's head view at the sizes it can draw (llminspect refuses it past 300 tokens), first paint;
- the memory the trace's attention maps hold (float32 would be layers x heads x tokens² x 4 bytes);
the sampling lab (``li.labs.sampling``): one knob step (an arrow key on the first slider); and the
journey lab (``li.labs.journey``): one *next step* or *back* click (``browser_views.py journey``: that alone).

"Painted" is the time of the last websocket message after the action, plus two animation frames
(the same measure as the shared view_speed tool). Uses the browser-test harness of ``tests/``
(a private JupyterLab, Debian's Chromium, every host but localhost unreachable).
Run: ``python benchmarks/browser_views.py`` (several minutes; prints a table).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from lab_browser import BLOCK_NETWORK, CHROMIUM, running_lab  # noqa: E402

from llminspect.views.attention import BERTVIZ_LIMIT  # noqa: E402

SIZES = (128, 512, 1024)
SETUP = (
    "import llminspect as li\nm = li.load('decoder')\n"
    "ids = m.tokenizer('The quick brown fox jumps over the lazy dog. ' * 200).input_ids[:{n}]\n"
    "tr = m.trace(m.tokenizer.decode(ids))\nlen(tr.tokens), type(tr.attentions).__name__"
)
CELLS = {
    "explorer": "li.labs.attention(tr, layer=15, head=0)",
    "bertviz": "li.views.bertviz(tr, view='head')",
    "sampling": "li.labs.sampling(m)",
    "journey": "li.labs.journey(m, 'The capital of France is')",
}


def notebook(folder: Path, name: str, cells: list[str]) -> str:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(book, folder / f"{name}.ipynb")
    return f"{name}.ipynb"


def settle(page, frames: list, since: float, quiet: float = 0.4, limit: float = 120) -> tuple[float, int]:
    """Seconds from ``since`` to the last frame of the burst it started (then two animation frames), and bytes."""
    end = time.time() + limit
    while time.time() < end and not [f for f in frames if f[0] > since]:
        page.wait_for_timeout(10)
    while time.time() < end and time.time() - max(f[0] for f in frames) < quiet:
        page.wait_for_timeout(20)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    after = [f for f in frames if f[0] > since]
    return (max(f[0] for f in after) - since if after else 0.0), sum(f[1] for f in after)


def run_cell(page, frames: list, index: int) -> tuple[float, int]:
    page.locator(".jp-Cell").nth(index).click()
    page.wait_for_timeout(200)
    started = time.time()
    page.keyboard.press("Shift+Enter")
    page.wait_for_timeout(300)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=600_000)
    return settle(page, frames, started, quiet=1.0)


def open_notebook(page, lab, name: str) -> None:
    page.goto(lab.url(name))
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)


def measure(page, lab, folder: Path, frames: list, n: int) -> dict:
    cells = [SETUP.format(n=n), CELLS["explorer"]] + ([CELLS["bertviz"]] if n <= BERTVIZ_LIMIT else [])
    name = notebook(folder, f"views{n}", cells)
    open_notebook(page, lab, name)
    run_cell(page, frames, 0)
    row = {"tokens": n}
    row["explorer first paint"] = run_cell(page, frames, 1)
    explorer = page.locator(".li-explorer").first
    heads = explorer.locator("select", has=page.locator("option", has_text="mean of all heads"))
    switches = []
    for head in (3, 5, 1, 7):
        started = time.time()
        heads.select_option(value=str(head))
        switches.append(settle(page, frames, started, quiet=0.3))
    row["head switch"] = sorted(switches)[len(switches) // 2]
    row["head switch bytes (most)"] = max(s[1] for s in switches)
    if n <= BERTVIZ_LIMIT:
        row["bertviz first paint"] = run_cell(page, frames, 2)
    return row


def sampling_step(page, lab, folder: Path, frames: list) -> tuple[float, int]:
    open_notebook(page, lab, notebook(folder, "sampling", ["import llminspect as li\nm = li.load('decoder')",
                                                            CELLS["sampling"]]))  # fmt: skip
    run_cell(page, frames, 0)
    run_cell(page, frames, 1)
    slider = page.locator(".widget-slider .noUi-handle, .widget-slider [role=slider]").first
    steps = []
    for i in range(6):
        slider.focus()
        started = time.time()
        page.keyboard.press("ArrowLeft" if i % 2 else "ArrowRight")
        steps.append(settle(page, frames, started, quiet=0.3))
        page.wait_for_timeout(300)
    return sorted(steps)[len(steps) // 2]


def journey_step(page, lab, folder: Path, frames: list) -> dict[str, tuple[float, int]]:
    """The journey lab's *next step* and *back*, median of 6: after a learner's pause (300 ms: the lab has
    computed the next step meanwhile) and clicked again the moment the last one painted (it may not have)."""
    open_notebook(page, lab, notebook(folder, "journey", ["import llminspect as li\nm = li.load('decoder')",
                                                          CELLS["journey"]]))  # fmt: skip
    run_cell(page, frames, 0)
    run_cell(page, frames, 1)
    medians = {}
    for pause, name in ((300, "after a pause"), (0, "at once")):
        steps = []
        for label in ["next step"] * 3 + ["back"] * 3:
            button = page.locator("button.jupyter-button", has_text=label).first
            started = time.time()
            button.click()
            steps.append(settle(page, frames, started, quiet=0.3 if pause else 0.05))
            page.wait_for_timeout(pause)
        medians[name] = sorted(steps)[len(steps) // 2]
    return medians


def trace_memory(m, n: int) -> tuple[float, float]:
    """MiB the attention maps of an n-token decoder trace hold, and what float32 would hold."""
    ids = m.tokenizer("The quick brown fox jumps over the lazy dog. " * 200).input_ids[:n]
    maps = m.trace(m.tokenizer.decode(ids)).attentions
    held = getattr(maps, "nbytes", None) or maps.numel() * maps.element_size()
    layers, heads, queries, keys = maps.shape
    return held / 2**20, layers * heads * queries * keys * 4 / 2**20


def main(only: str | None = None) -> None:
    """Every measure, or ``only="journey"`` for the journey lab's step alone."""
    from playwright.sync_api import sync_playwright

    scratch = Path(tempfile.mkdtemp(prefix="browser-views-"))
    folder = scratch / "notebooks"
    folder.mkdir()
    frames: list[tuple[float, int]] = []
    rows = []
    with running_lab(folder, scratch / "lab") as lab, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu",
                                                                                    BLOCK_NETWORK])  # fmt: skip
        page = browser.new_page(viewport={"width": 1500, "height": 1400})
        page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append((time.time(), len(f)))))
        for name, step in journey_step(page, lab, lab.root, frames).items():
            print(f"journey lab, next step / back, {name}: {step[0] * 1000:.0f} ms, {step[1] / 1e3:.1f} kB", flush=True)
        if only == "journey":
            browser.close()
            return
        for n in SIZES:
            rows.append(measure(page, lab, lab.root, frames, n))
            print(rows[-1], flush=True)
            if n == 1024:
                page.screenshot(path=str(Path("build") / "explorer_1024.png"), full_page=True)
        knob = sampling_step(page, lab, lab.root, frames)
        browser.close()
    print("device: cpu, Chromium through JupyterLab; seconds until painted, bytes on the kernel websocket")
    print(f"{'tokens':>6} {'explorer first paint':>24} {'head switch (median)':>22} {'bertviz head view':>22}"
          f" {'attention maps held':>22}")
    import llminspect as li

    m = li.load("decoder", device="cpu")
    for row in rows:
        held, full = trace_memory(m, row["tokens"])
        first, switch = row["explorer first paint"], row["head switch"]
        bertviz = row.get("bertviz first paint")
        bertviz_text = f"{bertviz[0]:5.2f} s {bertviz[1] / 1e6:6.2f} MB" if bertviz else "refuses (too big)"
        print(f"{row['tokens']:>6} {first[0]:7.2f} s {first[1] / 1e6:7.2f} MB {switch[0] * 1000:8.0f} ms "
              f"{row['head switch bytes (most)'] / 1e3:7.1f} kB {bertviz_text:>22} {held:8.0f} of {full:5.0f} MiB")
    print(f"sampling lab, one knob step: {knob[0] * 1000:.0f} ms, {knob[1] / 1e3:.1f} kB")


if __name__ == "__main__":
    Path("build").mkdir(exist_ok=True)
    main(sys.argv[1] if len(sys.argv) > 1 else None)
