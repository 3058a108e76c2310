"""The whole journey, live: one pass drawn as boxes, and a *next step* button that appends the chosen
token and runs the loop again.

In a kernel the lab thinks ahead: once a step is drawn and the kernel is idle, it computes the next
step (greedy, so it is known), and the click only draws it; *back* redraws the step before. A cell
run in between throws the ready step away (it may have changed the model), and the click computes.

Example:
    >>> import llminspect as li
    >>> lab = journey(li.load("decoder"), "The capital of France is")
    >>> lab.buttons["next step"].click()
    >>> lab.trip.prompt
    'The capital of France is Paris'
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import ipywidgets as widgets

from llminspect.analysis import journey as trips
from llminspect.analysis.arguments import index
from llminspect.views.journey import journey as draw

THINK_AHEAD_AFTER_S = 0.05  # let the browser paint the step just sent before the kernel computes the next


def cells_run() -> int | None:
    """How many cells the kernel has run (None outside IPython): a change means the model may have changed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.execution_count


def when_idle(callback: Callable[[], None]) -> None:
    """Run ``callback`` soon on the kernel's event loop, between messages; without a running loop, never."""
    try:
        asyncio.get_running_loop().call_later(THINK_AHEAD_AFTER_S, callback)
    except RuntimeError:  # a script or a plain test: each click computes its step
        pass


def journey(m, prompt: str = "The capital of France is", layer: int | None = None, head: int = 0) -> widgets.VBox:
    """The journey of ``prompt`` through ``m``; *next step* appends the greedy token, *back* undoes it."""
    layer, head = None if layer is None else index(layer, "layer"), index(head, "head")
    box, page = widgets.VBox(), widgets.HTML()
    inputs = m.inputs(prompt)
    history = [(inputs, trips.journey(m, inputs, layer, head))]  # each step drawn: its inputs and its trip
    ready: dict = {}  # the next step computed ahead: "step" (inputs, trip), "cells" (the cell count it was made at)

    def show() -> None:
        box.trip = history[-1][1]
        page.value = draw(box.trip).body
        back.disabled = len(history) == 1
        if "step" not in ready:
            when_idle(think_ahead)

    def think_ahead() -> None:
        if "step" in ready:
            return
        try:
            following = trips.next_step(m, *history[-1])
            ready.update(step=(following, trips.journey(m, following, layer, head)), cells=cells_run())
        except Exception:  # noqa: BLE001 - the click computes again and shows its own error
            ready.clear()

    def forward(_=None) -> None:
        step = ready.pop("step", None) if ready.pop("cells", None) == cells_run() else None
        ready.clear()
        if step is None:
            following = trips.next_step(m, *history[-1])
            step = (following, trips.journey(m, following, layer, head))
        history.append(step)
        show()

    def backward(_=None) -> None:
        ready.clear()
        ready.update(step=history.pop(), cells=cells_run())  # the step undone is the next step again
        show()

    onward, back = widgets.Button(description="next step", icon="forward"), widgets.Button(description="back")
    onward.on_click(forward)
    back.on_click(backward)
    box.children, box.buttons = [widgets.HBox([onward, back]), page], {"next step": onward, "back": back}
    show()
    return box
