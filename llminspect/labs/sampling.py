"""The sampling lab: sliders for every knob, a seed, and buttons to sample, take the greedy token,
pick any token, regenerate or undo.

The model runs once per text (and once per appended token); moving a slider only re-applies
transformers' processors to the cached logits (``analysis.sampling.NextTokenLab``).

Example:
    >>> import llminspect as li
    >>> widget = sampling(li.load("decoder"), "The capital of France is", top_k=3)
    >>> widget.sliders["top_k"].value, widget.lab.stages(widget.knobs())[-1].kept
    (3, 3)
"""

from __future__ import annotations

import ipywidgets as widgets

from llminspect.analysis.sampling import Knobs
from llminspect.labs.display import show_figure
from llminspect.views.checks import takes
from llminspect.views.sampling import distribution, running_text, stages_table
from llminspect.views.tokens import STYLE


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

    def __init__(self, lab, knobs: Knobs) -> None:
        self.lab, self.sliders = lab, _sliders(knobs)
        self.seed = widgets.IntText(value=0, description="seed", style={"description_width": "130px"})
        self.buttons = {name: widgets.Button(description=name) for name in self.ACTIONS}
        self.pick = widgets.Dropdown(description="token")
        self.chart, self.table, self.text = widgets.Output(), widgets.HTML(), widgets.HTML()
        self.draws = 0
        for slider in self.sliders.values():
            slider.observe(self.redraw, names="value")
        for name in self.ACTIONS:
            self.buttons[name].on_click(getattr(self, f"_{name}"))
        self.redraw()

    def knobs(self) -> Knobs:
        return Knobs(**{name: slider.value for name, slider in self.sliders.items()})

    def redraw(self, _=None) -> None:
        stages = self.lab.stages(self.knobs())
        top = stages[0].probabilities.topk(15).indices.tolist()
        labels = self.lab.labels(top)
        show_figure(self.chart, distribution(stages, top, labels))
        self.table.value = STYLE + stages_table(stages)
        self.text.value = running_text(*self.lab.written())
        self.pick.options = list(zip(labels, top, strict=True))
        self.pick.value = top[0]

    def _sample(self, _=None) -> None:
        self.lab.append(self.lab.sample(self.knobs(), self.seed.value + self.draws), "sampled")
        self.draws += 1
        self.redraw()

    def _regenerate(self, _=None) -> None:  # draw the last sampled token again, with the next seed
        if self.lab.chosen and self.lab.chosen[-1][1] == "sampled":
            self.lab.undo()
        self._sample()

    def _greedy(self, _=None) -> None:
        self.lab.append(int(self.lab.stages(self.knobs())[-1].probabilities.argmax()), "greedy")
        self.redraw()

    def _pick(self, _=None) -> None:
        self.lab.append(self.pick.value, "picked")
        self.redraw()

    def _undo(self, _=None) -> None:
        self.lab.undo()
        self.redraw()

    @property
    def widget(self) -> widgets.VBox:
        b = self.buttons
        row = widgets.HBox([b["sample"], b["greedy"], self.pick, b["pick"], b["regenerate"], b["undo"]])
        controls = widgets.HBox([widgets.VBox([*self.sliders.values(), self.seed]), self.table])
        return widgets.VBox([controls, row, self.text, self.chart])


@takes("inspector:Inspector", "li.load(...)")
def sampling(m, prompt: str = "The best thing about AI is its ability to", source=None, **start) -> widgets.VBox:
    """The sampling lab: sliders for every knob, a seed, and buttons to sample, take the greedy
    token or pick any token, with the distributions redrawn on cached logits."""
    lab = _SamplingLab(m.lab(prompt, source), Knobs(**start))
    widget = lab.widget
    widget.lab, widget.sliders, widget.buttons, widget.chart, widget.knobs = (
        lab.lab, lab.sliders, lab.buttons, lab.chart, lab.knobs,
    )  # fmt: skip
    return widget
