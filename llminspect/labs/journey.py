"""The whole journey, live: one pass drawn as boxes, and a *next step* button that appends the chosen
token and runs the loop again.

Example:
    >>> import llminspect as li
    >>> lab = journey(li.load("decoder"), "The capital of France is")
    >>> lab.buttons["next step"].click()
    >>> lab.trip.prompt
    'The capital of France is Paris'
"""

from __future__ import annotations

import ipywidgets as widgets

from llminspect.analysis import journey as trips
from llminspect.analysis.arguments import index
from llminspect.views.journey import journey as draw


def journey(m, prompt: str = "The capital of France is", layer: int | None = None, head: int = 0) -> widgets.VBox:
    """The journey of ``prompt`` through ``m``; *next step* appends the greedy token, *back* undoes it."""
    layer, head = None if layer is None else index(layer, "layer"), index(head, "head")
    box, page = widgets.VBox(), widgets.HTML()
    history = [m.inputs(prompt)]

    def show() -> None:
        box.trip = trips.journey(m, history[-1], layer, head)
        page.value = draw(box.trip).body
        back.disabled = len(history) == 1

    def forward(_=None) -> None:
        history.append(trips.next_step(m, history[-1], box.trip))
        show()

    def backward(_=None) -> None:
        history.pop()
        show()

    ahead, back = widgets.Button(description="next step", icon="forward"), widgets.Button(description="back")
    ahead.on_click(forward)
    back.on_click(backward)
    box.children, box.buttons = [widgets.HBox([ahead, back]), page], {"next step": ahead, "back": back}
    show()
    return box
