"""What a model represents: probe accuracy per layer (with its control), steering measured over prompts, the
steered text, and the toy model of superposition drawn as the paper draws it.

Example:
    >>> import numpy as np
    >>> from llminspect.analysis.probes import Probe
    >>> found = Probe(["embeddings", "layer 0"], np.array([0.5, 1.0]), np.array([0.5, 0.6]), 0.5, [0], [1], ("a", "b"))
    >>> [round(y, 2) for y in probe(found).data[2].y]
    [0.0, 0.4]
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.probes import Probe
from llminspect.analysis.steering import SteeredText, Steering
from llminspect.analysis.superposition import ToySuperposition
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text

_LAYOUT = {"template": "plotly_white", "margin": {"l": 70, "r": 20, "t": 60, "b": 60}}


@takes(Probe, "m.probe(data)")
def probe(found, title: str = "") -> go.Figure:
    """Test accuracy per layer on the task and on the control task, and their difference (selectivity)."""
    lines = (("task", found.accuracy, "#1971c2", "solid"), ("control task (random labels per word)", found.control,
             "#868e96", "dash"), ("selectivity = task − control", found.selectivity, "#e67700", "solid"))  # fmt: skip
    fig = go.Figure([go.Scatter(x=found.layers, y=values.tolist(), name=name, mode="lines+markers",
                                line={"color": colour, "dash": dash}) for name, values, colour, dash in lines])
    fig.add_hline(y=found.chance, line_dash="dot", line_color="#adb5bd", annotation_text=f"chance {found.chance:.2f}")
    heading = title or f"a linear probe per layer: {' vs '.join(found.label_names)} ({len(found.test)} test texts)"
    fig.update_layout(title=plotly_text(heading), yaxis={"title": "test accuracy", "range": [-0.05, 1.05]},
                      height=400, **_LAYOUT)  # fmt: skip
    return fig


@takes(Steering, "m.steering(prompts, positive, negative, words, layers, coefficients)")
def steering(found) -> go.Figure:
    """The metric's mean change per layer, one line per coefficient, with the random vectors of the same norm as
    grey dots (the control)."""
    fig = go.Figure()
    colours = ["#1971c2", "#e67700", "#2f9e44", "#c92a2a", "#7048e8"]
    for index, coefficient in enumerate(found.coefficients):
        fig.add_trace(go.Scatter(x=found.layers, y=found.shift[:, index].tolist(), mode="lines+markers",
                                 name=f"{found.positive} − {found.negative} × {coefficient:g}",
                                 line={"color": colours[index % len(colours)]}))  # fmt: skip
        draws = found.random_shift[:, index]
        fig.add_trace(go.Scatter(x=[layer for layer in found.layers for _ in range(draws.shape[1])],
                                 y=draws.flatten().tolist(), mode="markers",
                                 name=f"random, same norm × {coefficient:g}",
                                 marker={"color": "#adb5bd", "symbol": "x"}, showlegend=index == 0))  # fmt: skip
    fig.add_hline(y=0, line_color="#495057")
    fig.update_layout(
        title=plotly_text(f"ActAdd over {len(found.prompts)} prompts: change of mean log p(positive words) − mean "
                          "log p(negative words)"),  # fmt: skip
        xaxis={"title": "layer whose input gets the vector"}, yaxis={"title": "change (nats)"}, height=420, **_LAYOUT,
    )
    return fig


@takes(SteeredText, "m.steered_text(prompt, positive, negative, layer, coefficient)")
def steered_text(found) -> HTMLView:
    """The three continuations side by side."""
    rows = "".join(f"<tr><td style='padding:4px 10px'><b>{escape(name)}</b></td><td style='padding:4px 10px'>"
                   f"{escape(found.prompt)}<span style='color:#1971c2'>{escape(text)}</span></td></tr>"
                   for name, text in (("as it is", found.plain), (f"steered ×{found.coefficient:g}", found.steered),
                                      ("random vector, same norm", found.random)))  # fmt: skip
    caption = f"greedy continuations, vector added to the input of block {found.layer}"
    return HTMLView(f"<table style='font:14px sans-serif'><caption>{escape(caption)}</caption>{rows}</table>",
                    "steered text")  # fmt: skip


@takes(ToySuperposition, "toy_superposition(sparsities)")
def superposition(found) -> go.Figure:
    """One panel per sparsity: each feature's direction in the 2 hidden dimensions (a column of W), darker for the
    more important features, as Elhage et al. draw them."""
    count = len(found.sparsities)
    fig = make_subplots(1, count, subplot_titles=[f"sparsity {s:g}: {int(n)} of {found.weights.shape[2]} features"
                                                  for s, n in zip(found.sparsities, found.represented(), strict=True)])
    features = found.weights.shape[2]
    for panel in range(count):
        for feature in range(features):
            x, y = found.weights[panel, :, feature].tolist()[:2]
            shade = int(40 + 180 * feature / max(1, features - 1))
            fig.add_trace(go.Scatter(x=[0, x], y=[0, y], mode="lines+markers", showlegend=False,
                                     line={"color": f"rgb({shade},{shade},{shade})", "width": 3},
                                     marker={"size": [0, 9]}, hovertemplate=f"feature {feature}: "
                                     f"({x:.2f}, {y:.2f}), length {math.hypot(x, y):.2f}<extra></extra>"),
                          1, panel + 1)  # fmt: skip
        fig.update_xaxes(range=[-1.4, 1.4], showticklabels=False, row=1, col=panel + 1)
        fig.update_yaxes(range=[-1.4, 1.4], showticklabels=False, scaleanchor=f"x{panel + 1 if panel else ''}",
                         row=1, col=panel + 1)  # fmt: skip
    fig.update_layout(title=plotly_text("5 features in 2 dimensions: each line is a feature's direction (darker = "
                                        "more important)"), height=330, **_LAYOUT)  # fmt: skip
    return fig
