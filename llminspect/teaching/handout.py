"""A lesson as one offline page to take home: prose, code and outputs in order, every view drawn.

``handout`` runs the lesson (offline, as ``llminspect export`` does) and converts it with nbconvert's
own HTML exporter (the JupyterLab look). Before that, each output becomes something a page with no
kernel and no network can draw:

- plotly figures: a ``div`` drawn by plotly.js, which the page carries **once**, inline;
- bertviz views: their inline loader (require.js, d3, jQuery) kept once, dropped from later views;
- the attention explorer: its own self-drawing page in an ``iframe`` — still interactive;
- other live widgets: a picture at the state they were in, rebuilt from the widget state the run
  saved (boxes, HTML, plotly inside outputs, sliders and buttons as their labels), and widgets
  written with anywidget (the sampling chart) drawn by their own module, inline.

nbconvert's template asks a CDN for require.js and MathJax; both tags are removed (formulas show as
their TeX source).

``handout(Path("notebooks/03_attention.ipynb"), Path("handouts"))`` writes ``handouts/03_attention.html``.

Example (a slider of a live widget, as the page shows it):
    >>> _control({"description": "top-k", "value": 50})
    "<span style='margin-right:12px;font:13px sans-serif'>top-k <b>50</b></span>"
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from llminspect.views.bertviz_offline import loader_html
from llminspect.views.html import PLOTLY_MIMETYPE, escape

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>")
ANYWIDGET = """<div id="%(id)s"></div><style>%(css)s</style><script type="module">
const esm = %(esm)s, state = %(state)s;
const url = URL.createObjectURL(new Blob([esm], {type: "text/javascript"}));
const found = await import(url);
let widget = found.default ?? found;
if (typeof widget === "function") widget = await widget();
const model = {get: (key) => state[key], set() {}, save_changes() {}, on() {}, off() {}, send() {}};
(widget.render ?? found.render)({model, el: document.getElementById("%(id)s")});
</script>"""


def run_lesson(notebook: Path, timeout: int = 600):
    """The lesson executed offline (labs that can draw without a kernel add their page to their output)."""
    import nbformat
    from nbclient import NotebookClient

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    book = nbformat.read(notebook, as_version=4)
    os.environ["LLMINSPECT_EXPORT"] = "1"
    try:
        NotebookClient(book, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()  # fmt: skip
    finally:
        os.environ.pop("LLMINSPECT_EXPORT", None)
    return book


class _Page:
    """Turns outputs into static HTML, remembering what the page already carries (plotly.js, bertviz's loader)."""

    def __init__(self, state: dict) -> None:
        self.state, self.plotly, self.bertviz, self.count = state, False, False, 0

    def _id(self) -> str:
        self.count += 1
        return f"li-handout-{self.count}"

    def output_html(self, output) -> str | None:
        """The output as HTML for the page, or None to keep it as nbconvert shows it (text, streams)."""
        data = output.get("data", {})
        if PLOTLY_MIMETYPE in data:
            import plotly.io as pio

            self.plotly = True
            figure = pio.from_json(json.dumps(data[PLOTLY_MIMETYPE]))
            return pio.to_html(figure, include_plotlyjs=False, full_html=False, div_id=self._id())
        page = data.get("text/html", "")
        if page.lstrip().startswith("<!DOCTYPE"):  # a view that is a whole page (the attention explorer)
            return f"<iframe srcdoc=\"{html.escape(page)}\" style='width:100%;height:760px;border:0'></iframe>"
        if page and loader_html() in page:
            page = page if not self.bertviz else page.replace(loader_html(), "")
            self.bertviz = True
            return page
        if WIDGET_VIEW in data:
            return self.widget_html(data[WIDGET_VIEW]["model_id"])
        return None

    def widget_html(self, model_id: str) -> str:
        """A live widget as a picture of its saved state."""
        model = self.state.get(model_id)
        if model is None:
            return "<p><i>(a live widget: open the notebook to use it)</i></p>"
        name, state = model["model_name"], model["state"]
        children = [self.widget_html(c.removeprefix("IPY_MODEL_")) for c in state.get("children", [])]
        if name in ("VBoxModel", "BoxModel", "GridBoxModel"):
            return "<div>" + "".join(children) + "</div>"
        if name == "HBoxModel":
            return "<div style='display:flex;gap:8px;flex-wrap:wrap'>" + "".join(children) + "</div>"
        if name in ("HTMLModel", "HTMLMathModel"):
            return state.get("value", "")
        if name == "OutputModel":
            return "".join(self.output_html(o) or _plain(o) for o in state.get("outputs", []))
        if name == "AnyModel":
            values = {k: v for k, v in state.items() if not k.startswith("_") and k != "layout"}
            return ANYWIDGET % {"id": self._id(), "css": state.get("_css", ""), "esm": json.dumps(state["_esm"]),
                                "state": json.dumps(values).replace("</", "<\\/")}  # fmt: skip
        if name == "ButtonModel":
            return f"<button disabled>{escape(state.get('description', ''))}</button>"
        return _control(state)

    def finish(self, page: str) -> str:
        page = CDN_SCRIPT.sub("", page)
        if self.plotly:  # plotly.js first in <head>: before any require.js, so it defines window.Plotly
            from plotly.offline import get_plotlyjs

            page = page.replace("<head>", f"<head><script>{get_plotlyjs()}</script>", 1)
        return page


def _plain(output) -> str:
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    return f"<pre>{escape(text)}</pre>" if text else ""


def _control(state: dict) -> str:
    """A slider, menu or text box as its label and current value."""
    value = state.get("value", "")
    if "_options_labels" in state and state.get("index") is not None:
        value = state["_options_labels"][state["index"]]
    label = state.get("description", "")
    return f"<span style='margin-right:12px;font:13px sans-serif'>{escape(label)} <b>{escape(value)}</b></span>"


def handout(notebook: Path, out: Path, timeout: int = 600) -> Path:
    """Run ``notebook`` and write it as one offline page, ``out/<lesson>.html``; return its path."""
    page = handout_page(run_lesson(notebook, timeout))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{notebook.stem}.html"
    path.write_text(page, encoding="utf-8")
    return path


def handout_page(book) -> str:
    """An executed lesson (an nbformat notebook, changed in place) as the text of one offline page."""
    from nbconvert import HTMLExporter

    page = _Page(book.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}))
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            shown = page.output_html(output)
            if shown is not None:
                output["data"] = {"text/html": shown}
                output["metadata"] = {}
    book.metadata.pop("widgets", None)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(book)
    return page.finish(body)
