"""Step through a walk: a slider over its steps, each step's module and shapes, and its output as a heatmap.

Example:
    >>> import llminspect as li
    >>> stepper = walk(li.load("toy-seq2seq").walk("happy bird"))
    >>> stepper.children[0].max > 10
    True
"""

from __future__ import annotations

import ipywidgets as widgets

from llminspect.analysis.steps import Walk
from llminspect.labs.display import show_figure
from llminspect.views.checks import takes
from llminspect.views.colours import background
from llminspect.views.html import escape
from llminspect.views.layers import shape_text, step_figure


@takes(Walk, "m.walk(text)")
def walk(walk, dims: int = 64) -> widgets.VBox:
    """Step through a walk: a slider over the steps, the step's module and shapes, and its output."""
    tokens = walk.tokens.labels if walk.tokens is not None else None
    source = getattr(walk.source, "labels", None)
    slider = widgets.IntSlider(0, 0, len(walk) - 1, description="step", continuous_update=False)
    slider.layout.width = "600px"
    info, output = widgets.HTML(), widgets.Output()

    def draw(change=None) -> None:
        step = walk[slider.value]
        inputs = ", ".join(shape_text(s) for s in step.input_shapes) or "—"
        info.value = (
            f"<b>{escape(step.name)}</b> <span style='background:{background(step.kind)}'>"
            f"{escape(step.kind)}</span> · <code>{escape(step.module or 'a plain add')}</code> · "
            f"in {escape(inputs)} → out {escape(shape_text(step.output_shape))}"
        )
        show_figure(output, step_figure(step, source if step.stack == "encoder" else tokens, dims))

    slider.observe(draw, "value")
    draw()
    return widgets.VBox([slider, info, output])
