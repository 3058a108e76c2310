"""What every lab needs: draw a plotly figure into a widget output, and wait for typing to pause.

``debounced`` runs a callback once typing pauses: inside Jupyter the kernel runs an asyncio loop,
so the call is scheduled on it and each new call cancels the one waiting. Without a running loop
(plain Python, tests) it runs at once.

Example:
    >>> seen = []
    >>> debounced(0.1, seen.append)("now")
    >>> seen
    ['now']
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from llminspect.views.html import PLOTLY_MIMETYPE


def show_figure(output, figure) -> None:
    """Put a plotly figure into an ipywidgets ``Output`` as plotly's JupyterLab mimetype.

    JupyterLab draws that mimetype offline with the extension inside the plotly wheel. Setting
    the output directly (rather than ``figure.show()``) needs no running IPython shell and skips
    plotly's deep-copying validation, which matters for a 1,024 x 1,024 heatmap.
    """
    import plotly.io as pio

    spec = json.loads(pio.to_json(figure, validate=False))
    output.outputs = ({"output_type": "display_data", "data": {PLOTLY_MIMETYPE: spec}, "metadata": {}},)


def debounced(wait: float, function: Callable[..., None]) -> Callable[..., None]:
    """Wrap ``function`` so only the last of several quick calls runs, ``wait`` seconds later."""
    pending: list[asyncio.TimerHandle] = []

    def call(*args) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            function(*args)
            return
        while pending:
            pending.pop().cancel()
        pending.append(loop.call_later(wait, function, *args))

    return call
