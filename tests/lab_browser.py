"""A private JupyterLab driven by Debian's Chromium, for the real-browser tests of every lesson.

The lab runs on a free localhost port with a token, in a temporary HOME (no workspace or
setting leaks between runs), on a copy of the notebooks (autosave never touches the repo),
with the model hub forced offline. Chromium is Debian's (``/usr/bin/chromium``, installed by
``scripts/install_chromium.sh``), driven through Playwright's Python package — never
``playwright install``. Its resolver maps every host but localhost to nothing, and every request
the page makes is recorded so a test can prove the lesson stayed offline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = Path(os.environ.get("LLMINSPECT_CHROMIUM", "/usr/bin/chromium"))
BLOCK_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SETTINGS = {
    # no "fetch Jupyter news?" toast over the page, no update checks
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    # render every cell (no windowing), so every output is in the DOM to check
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: its URL pieces and the folder it serves."""

    port: int
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}&reset"


@contextlib.contextmanager
def running_lab(notebooks: Path, scratch: Path):
    """Start JupyterLab on a copy of ``notebooks``; stop it afterwards."""
    home, root = scratch / "home", scratch / "lessons"
    shutil.copytree(notebooks, root)
    settings = home / "settings"
    for relative, values in SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(
        os.environ,
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(home / "mpl"),
        HF_HOME=str(home / "hf"),
        HF_HUB_OFFLINE="1",
    )
    from llminspect.models.registry import cache_root

    env["LLMINSPECT_CACHE"] = os.environ.get("LLMINSPECT_CACHE", str(cache_root()))
    port, token = free_port(), os.urandom(12).hex()
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root
    log = scratch / "lab.log"
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield Lab(port, token, root, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Requests:
    """Every URL a page asked for; ``outside`` lists those not on this machine."""

    urls: list[str] = field(default_factory=list)

    def record(self, request) -> None:
        self.urls.append(request.url)

    @property
    def outside(self) -> list[str]:
        return [u for u in self.urls if urlparse(u).scheme not in ("data", "blob", "about")
                and urlparse(u).hostname not in LOCAL_HOSTS]  # fmt: skip


RUN_ALL = "async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.innerText.trim());
  return {kernel: kernel ? kernel.status : 'none', prompts};
}"""
DOM_REPORT = """() => {
  // JupyterLab 4: text renderers carry data-mime-type; plotly's renderer is .jp-RenderedPlotly;
  // an ipywidget view is an lm-Panel output
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
  const mime = (o) => o.getAttribute('data-mime-type') || '';
  // (a hidden, empty panel is a progress bar that removed itself when done)
  const widgets = outputs.filter(o => o.classList.contains('lm-Panel') && !o.classList.contains('lm-mod-hidden'));
  const plotly = outputs.filter(o => o.classList.contains('jp-RenderedPlotly'));
  const bertviz = [...document.querySelectorAll('[id^=bertviz]')];
  return {
    stderr: outputs.filter(o => mime(o).includes('stderr')).map(o => o.innerText.slice(0, 500)),
    widgets: widgets.length,
    widgetsDrawn: widgets.filter(o => o.querySelector('[class*="widget-"], [data-drawn]')).length,
    // views drawn in the browser by llminspect's own code (explorer, bar charts) mark each drawing
    clientDrawn: [...document.querySelectorAll('[data-drawn]')].filter(e => Number(e.dataset.drawn) > 0).length,
    explorers: document.querySelectorAll('.li-explorer').length,
    widgetErrors: outputs.filter(o => /Error displaying widget|Loading widget\\.\\.\\./.test(o.innerText)).length,
    plotly: plotly.length,
    plotlyDrawn: plotly.filter(o => o.querySelector('.main-svg')).length,
    bertviz: bertviz.length,
    bertvizDrawn: bertviz.filter(b => b.querySelector('svg')).length,
    sliders: document.querySelectorAll('.jp-OutputArea-output .widget-slider').length,
  };
}"""


# The notebook as JupyterLab holds it (every output the kernel sent), as the text it would save to the file.
NOTEBOOK_JSON = "() => JSON.stringify(window.jupyterapp.shell.currentWidget.context.model.toJSON())"


def run_notebook(page, lab: Lab, notebook: str, timeout_s: float = 600) -> float:
    """Open ``notebook``, run every cell, wait until the kernel is idle and nothing is queued; return seconds.

    A cell that raises stops JupyterLab's run-all: the cells after it stay unrun (``[ ]``) and this returns
    at once; ``unrun_cells`` tells. ``NOTEBOOK_JSON`` then gives the executed notebook.
    """
    open_notebook(page, lab, notebook)
    start, settled = time.monotonic(), 0
    page.evaluate(RUN_ALL)
    while True:
        state = page.evaluate(STATE)
        queued = any(p.startswith("[*]") for p in state["prompts"])
        settled = settled + 1 if state["prompts"] and not queued and state["kernel"] == "idle" else 0
        if settled >= 2 or (settled and not unrun_cells(state["prompts"])):  # all run, or stopped at an error
            break
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{notebook} still running after {timeout_s:.0f} s: {state}")
        time.sleep(0.5)
    seconds = time.monotonic() - start
    settle_drawing(page)
    return seconds


def settle_drawing(page, timeout_s: float = 10) -> None:
    """Wait until late renderers (plotly, widgets, bertviz) have drawn what the outputs hold, or ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = page.evaluate(DOM_REPORT)
        if all(report[f"{kind}Drawn"] >= report[kind] for kind in ("plotly", "widgets", "bertviz")):
            break
        page.wait_for_timeout(200)
    page.wait_for_timeout(300)  # a frame or two more for what draws after its container


def open_notebook(page, lab: Lab, notebook: str) -> None:
    """Open ``notebook`` with its own fresh kernel: the page loads JupyterLab the first time; after that the
    lab already in the page opens it (as a learner opens the next lesson), which skips loading the app again."""
    if page.url.startswith(f"http://127.0.0.1:{lab.port}/lab") and page.evaluate("() => !!window.jupyterapp"):
        page.evaluate("async (path) => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }",
                      notebook)  # fmt: skip
    else:
        page.goto(lab.url(notebook))
    page.wait_for_function("(path) => { const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                           " return p && p.context && p.context.path === path && p.sessionContext"
                           " && p.sessionContext.session && p.sessionContext.session.kernel"
                           " && p.sessionContext.session.kernel.status === 'idle'"
                           " && p.node.querySelector('.jp-Notebook .jp-Cell'); }", arg=notebook,
                           timeout=120_000)  # fmt: skip


def close_notebook(page) -> None:
    """Shut down the open notebook's kernel and close it unsaved (the next lesson starts clean)."""
    page.evaluate("""async () => { const p = window.jupyterapp.shell.currentWidget;
        if (p && p.sessionContext) { await p.sessionContext.shutdown(); p.dispose(); } }""")


def unrun_cells(prompts: list[str]) -> list[int]:
    """The code cells (0-based) whose prompt shows no execution count."""
    return [i for i, p in enumerate(prompts) if not (p.startswith("[") and p[1:-2].strip().isdigit())]


def changed_by(page, read, act, wait_s: float = 10) -> tuple[str, str]:
    """``read()`` before and after ``act()``, polling until it changes (or ``wait_s`` has passed)."""
    before = read()
    act()
    for _ in range(int(wait_s * 10)):
        page.wait_for_timeout(100)
        after = read()
        if after != before:
            break
    return before, after


def switch_explorer_head(page) -> tuple[str, str]:
    """Pick another head in the first attention explorer; return its whole-map canvas before and after."""
    explorer = page.locator(".li-explorer").first
    canvas = explorer.locator("canvas.li-overview")
    heads = explorer.locator("select", has=page.locator("option", has_text="mean of all heads"))
    return changed_by(page, lambda: canvas.evaluate("c => c.toDataURL()"),
                      lambda: heads.select_option(index=1 if heads.input_value() != "1" else 2), wait_s=4)  # fmt: skip


def step_the_journey(page, button: str = "next step") -> tuple[str, str]:
    """Click a button of the first journey lab; return the text its loop line runs on, before and after."""
    lab = page.locator(".widget-vbox", has=page.locator("button.jupyter-button", has_text="next step")).first
    loop = lab.locator(".li-trip .loop code")
    return changed_by(page, loop.inner_text, lab.locator("button.jupyter-button", has_text=button).click)


def nudge_first_slider(page) -> tuple[str, str]:
    """Press the right arrow on the first slider; return the text of its widget area before and after."""
    handle = page.locator(
        ".jp-OutputArea-output .widget-slider .noUi-handle, .jp-OutputArea-output .widget-slider input"
    ).first
    area = handle.locator("xpath=ancestor::div[contains(@class,'jp-OutputArea-output')][1]")
    return changed_by(page, area.inner_html, lambda: (handle.focus(), page.keyboard.press("ArrowRight")))


CELL_INDEX = """(marker) => window.jupyterapp.shell.currentWidget.content.widgets
  .findIndex(cell => cell.model.sharedModel.getSource().includes(marker))"""


def write_in_cell(page, marker: str, text: str) -> int:
    """Replace, by typing in JupyterLab's editor, the source of the first cell containing ``marker``; run it
    and the cell after it (the check); return the index of the edited cell."""
    index = page.evaluate(CELL_INDEX, marker)
    assert index >= 0, f"no cell contains {marker!r}"
    cells = page.locator(".jp-Notebook .jp-Cell")
    before = cells.nth(index + 1).locator(".jp-InputArea-prompt").inner_text()
    cells.nth(index).scroll_into_view_if_needed()
    cells.nth(index).locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)  # as a learner pastes it: no auto-indent on the way in
    page.keyboard.press("Shift+Enter")  # run the definition; the check cell below is selected
    page.keyboard.press("Shift+Enter")  # run the check
    page.wait_for_function("""([i, before]) => { const p = window.jupyterapp.shell.currentWidget;
        const prompt = p.content.widgets[i + 1].node.querySelector('.jp-InputArea-prompt').innerText.trim();
        return p.sessionContext.session.kernel.status === 'idle' && /^\\[\\d+\\]/.test(prompt)
            && prompt !== before.trim(); }""", arg=[index, before], timeout=120_000)  # fmt: skip
    return index


def output_text(page, index: int) -> str:
    """The text of cell ``index``'s outputs as the page shows them."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea").inner_text()
