"""The sampling lab: sliders for every knob, a seed, and buttons to sample, take the greedy token,
pick any token, regenerate or undo.

The model runs once per text (and once per appended token); moving a slider only re-applies
transformers' processors to the cached logits (``analysis.sampling.Sampling``).

Example:
    >>> import llminspect as li
    >>> widget = sampling(li.load("decoder"), "The capital of France is", top_k=3)
    >>> widget.sliders["top_k"].value, widget.sampling.stages(widget.knobs())[-1].kept
    (3, 3)
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import ipywidgets as widgets
import traitlets

from llminspect.analysis.sampling import Knobs
from llminspect.inspector import Inspector
from llminspect.views.checks import takes
from llminspect.views.sampling import running_text, stages_table
from llminspect.views.tokens import STYLE

TOP = 15  # tokens on the chart


class BarChart(anywidget.AnyWidget):
    """Two bars per token, before and after the knobs, drawn in the browser; a knob step sends only numbers."""

    _esm = Path(__file__).with_name("bars.js")
    _css = Path(__file__).with_name("bars.css")
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    before = traitlets.List(traitlets.Float()).tag(sync=True)
    after = traitlets.List(traitlets.Float()).tag(sync=True)
    title = traitlets.Unicode().tag(sync=True)

    def show(self, stages, ids: list[int], labels: list[str]) -> None:
        """Draw tokens ``ids`` (as ``labels``) before the knobs and after them, in one message."""
        with self.hold_sync():
            self.labels = labels
            self.before = [round(float(stages[0].probabilities[i]), 6) for i in ids]
            self.after = [round(float(stages[-1].probabilities[i]), 6) for i in ids]
            kept = stages[-1].kept
            self.title = f"top {len(ids)} next tokens — {kept:,} kept after the knobs (grey: model, blue: after)"


def _sliders(knobs: Knobs) -> dict[str, widgets.Widget]:
    style = {"description_width": "130px"}
    return {
        "temperature": widgets.FloatSlider(value=knobs.temperature, min=0, max=2, step=0.05, style=style,
                                           description="temperature (0=greedy)"),
        "top_k": widgets.IntSlider(value=knobs.top_k, min=0, max=100, style=style, description="top-k (0=off)"),
        "top_p": widgets.FloatSlider(value=knobs.top_p, min=0.01, max=1, step=0.01, style=style, description="top-p"),
        "min_p": widgets.FloatSlider(value=knobs.min_p, min=0, max=0.5, step=0.01, style=style, description="min-p"),
        "repetition_penalty": widgets.FloatSlider(value=knobs.repetition_penalty, min=1, max=2, step=0.05,
                                                  style=style, description="repetition penalty"),
    }  # fmt: skip


class _SamplingLab:
    """The lab's controls and what each does; ``widget`` is what JupyterLab shows."""

    ACTIONS = ("sample", "greedy", "pick", "regenerate", "undo")

    def __init__(self, sampling, knobs: Knobs) -> None:
        self.sampling, self.sliders = sampling, _sliders(knobs)
        self.seed = widgets.IntText(value=0, description="seed", style={"description_width": "130px"})
        self.buttons = {name: widgets.Button(description=name) for name in self.ACTIONS}
        self.pick = widgets.Dropdown(description="token")
        self.chart, self.table, self.text = BarChart(), widgets.HTML(), widgets.HTML()
        self.draws = 0
        for slider in self.sliders.values():
            slider.observe(self.redraw, names="value")
        for name in self.ACTIONS:
            self.buttons[name].on_click(getattr(self, f"_{name}"))
        self.refresh()

    def knobs(self) -> Knobs:
        return Knobs(**{name: slider.value for name, slider in self.sliders.items()})

    def redraw(self, _=None) -> None:
        """A knob moved: the bars and the stages table (the text and the top tokens stay)."""
        stages = self.sampling.stages(self.knobs())
        self.chart.show(stages, self.top, self.labels)
        self.table.value = STYLE + stages_table(stages)

    def refresh(self) -> None:
        """The text changed: new top tokens, the running text, then the bars."""
        self.top = self.sampling.logits.topk(TOP).indices.tolist()
        self.labels = self.sampling.labels(self.top)
        self.text.value = running_text(*self.sampling.written())
        self.pick.options = list(zip(self.labels, self.top, strict=True))
        self.pick.value = self.top[0]
        self.redraw()

    def _sample(self, _=None) -> None:
        self.sampling.append(self.sampling.sample(self.knobs(), self.seed.value + self.draws), "sampled")
        self.draws += 1
        self.refresh()

    def _regenerate(self, _=None) -> None:  # draw the last sampled token again, with the next seed
        if self.sampling.chosen and self.sampling.chosen[-1][1] == "sampled":
            self.sampling.undo()
        self._sample()

    def _greedy(self, _=None) -> None:
        self.sampling.append(int(self.sampling.stages(self.knobs())[-1].probabilities.argmax()), "greedy")
        self.refresh()

    def _pick(self, _=None) -> None:
        self.sampling.append(self.pick.value, "picked")
        self.refresh()

    def _undo(self, _=None) -> None:
        self.sampling.undo()
        self.refresh()

    @property
    def widget(self) -> widgets.VBox:
        b = self.buttons
        row = widgets.HBox([b["sample"], b["greedy"], self.pick, b["pick"], b["regenerate"], b["undo"]])
        controls = widgets.HBox([widgets.VBox([*self.sliders.values(), self.seed]), self.table])
        return widgets.VBox([controls, row, self.text, self.chart])


@takes(Inspector, "li.load(...)")
def sampling(m, prompt: str = "The best thing about AI is its ability to", source=None, **start) -> widgets.VBox:
    """The sampling lab: sliders for every knob, a seed, and buttons to sample, take the greedy
    token or pick any token, with the distributions redrawn on cached logits.

    The knobs start where ``m.model.generate(do_sample=True, **start)`` would: the knobs given in ``start``,
    the rest from the model's generation config and transformers' defaults (``top_k=50``)."""
    lab = _SamplingLab(m.sampling(prompt, source), Knobs.from_generate(m.model, **start))
    widget = lab.widget
    widget.sampling, widget.sliders, widget.buttons, widget.chart, widget.knobs = (
        lab.sampling, lab.sliders, lab.buttons, lab.chart, lab.knobs,
    )  # fmt: skip
    return widget
