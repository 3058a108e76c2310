"""HTML helpers shared by every view: escaping and self-contained output.

Every token string that reaches HTML goes through ``escape`` first: a token may contain
``<script>``, ``&`` or quotes, and must show as text, never act as markup.

Example:
    >>> escape("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from llminspect.errors import InputError, LLMInspectError

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"  # what JupyterLab's plotly extension draws, offline


def escape(text: object) -> str:
    """Escape text for HTML element content and attribute values."""
    return html.escape(str(text), quote=True)


class HTMLView:
    """An HTML fragment that displays itself in JupyterLab and saves as one offline file."""

    def __init__(self, body: str, title: str = "llminspect view") -> None:
        self.body = body
        self.title = title

    def _repr_html_(self) -> str:
        return self.body

    def to_html(self) -> str:
        """A complete, self-contained HTML document (no network needed to open it)."""
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(self.title)}</title></head>"
            f"<body>{self.body}</body></html>"
        )

    def save(self, path: str | Path) -> Path:
        """Write the view as one HTML file (its folder created if missing) and return its path."""
        path = html_path(path)
        path.write_text(self.to_html(), encoding="utf-8")
        return path


def html_path(path: str | Path) -> Path:
    """Where to write an HTML file: ``path`` checked, its missing parent folders created.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> html_path(folder / "new" / "view.html").parent.is_dir()
        True
        >>> html_path(folder)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: path=...: that is a folder; pass a file name inside it, e.g. '.../view.html'.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InputError(f"path={path!r}: pass a file name such as 'view.html'.")
    path = Path(path).expanduser()
    if path.is_dir():
        inside = str(path / "view.html")
        raise InputError(f"path={str(path)!r}: that is a folder; pass a file name inside it, e.g. {inside!r}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"path={str(path)!r}: cannot create its folder {str(path.parent)!r} ({error.strerror}); "
                         "pass a path in a folder you can write to.") from error  # fmt: skip
    return path


def save(view, path: str | Path) -> Path:
    """Save a view as one self-contained HTML file that opens with no network.

    Works for llminspect's HTML views and plotly figures (plotly.js is written into the file).
    Live widgets need a running kernel, so they cannot be saved; save the static view they show.
    """
    if not isinstance(view, HTMLView) and not hasattr(view, "to_html") and not hasattr(view, "write_html"):
        raise LLMInspectError(
            f"A {type(view).__name__} cannot be saved as a self-contained HTML file: live widgets need a "
            "running kernel. Save the static view instead (e.g. views.tokens(...) or a plotly figure)."
        )
    path = html_path(path)
    if isinstance(view, HTMLView):
        return view.save(path)
    if hasattr(view, "to_html"):  # a lab that can run in a page with no kernel (the attention explorer)
        path.write_text(view.to_html(), encoding="utf-8")
        return path
    view.write_html(path, include_plotlyjs=True, full_html=True)  # a plotly figure
    return path


def plotly_text(text: object) -> str:
    """Escape text for plotly labels: plotly reads a few HTML tags (<b>, <s>, <a>, ...) in them,
    so a token such as "<s>" would vanish or restyle its neighbours; entities show as characters."""
    return html.escape(str(text), quote=False)


def tick_labels(labels: list[str], most: int = 60) -> dict:
    """Axis settings that label positions 0..n-1 with (escaped) token text, at most ``most`` ticks.

    Positions rather than categories keep repeated tokens ("the" twice) on separate rows.
    """
    step = max(1, -(-len(labels) // most))
    positions = list(range(0, len(labels), step))
    return {"tickmode": "array", "tickvals": positions, "ticktext": [plotly_text(labels[i]) for i in positions]}
