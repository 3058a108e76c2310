"""Importance views: tokens coloured by signed importance, target x source matrices, methods side
by side, audio windows over the waveform, and a small lab widget.

Every view states what was attributed, the baseline, and for integrated gradients the
convergence delta (how far the scores' sum is from f(input) - f(baseline)).

Example:
    >>> import torch
    >>> from llminspect.analysis.importance import Attribution
    >>> a = Attribution("decoder", "saliency", ["<b>", "x"], ["y"], torch.tensor([[1.0, 0.5]]),
    ...                 "p", "none", [0.5], None, None, 1, False)
    >>> "&lt;b&gt;" in importance(a).body
    True
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.importance import Attribution
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text, tick_labels

_LAYOUT = {"template": "plotly_white", "margin": {"l": 70, "r": 20, "t": 70, "b": 60}}
_STYLE = (
    "<style>.li-imp{font:14px monospace;line-height:2}.li-imp span{padding:2px 4px;margin:1px;border-radius:3px;"
    "white-space:pre}.li-imp-info{font:12px sans-serif;color:#333;margin:4px 0}.li-imp-warn{color:#c92a2a}"
    ".li-legend span{display:inline-block;width:60px;height:10px}</style>"
)


def _colour(score: float, top: float, signed: bool) -> str:
    strength = min(1.0, abs(score) / top) if top > 0 else 0.0
    if signed and score < 0:
        return f"rgba(224,49,49,{strength:.3f})"  # against the target
    return f"rgba(54,79,199,{strength:.3f})"  # for the target (or magnitude, when unsigned)


def summary(attribution, row: int = 0) -> str:
    """One line saying what a row of scores means: method, quantity, baseline, completeness."""
    a = attribution
    parts = [
        f"<b>{escape(a.method.replace('_', ' '))}</b> · target <code>{escape(a.targets[row])}</code>",
        f"attributed: {escape(a.quantity)}",
        f"baseline: {escape(a.baseline)}",
        f"f(input) = {a.f_input[row]:.4f}",
    ]
    if a.f_baseline is not None:
        parts.append(f"f(baseline) = {a.f_baseline[row]:.4f}")
    if a.delta is not None:
        gap = a.f_input[row] - a.f_baseline[row]
        converged = abs(a.delta[row]) <= 0.05 * max(abs(gap), 1e-3)
        css = "" if converged else " class='li-imp-warn'"
        note = "" if converged else " — not converged: more steps, or attribute the probability instead"
        parts.append(
            f"<span{css}>convergence delta = {a.delta[row]:+.4f} (scores sum to {float(a.scores[row].sum()):.4f}, "
            f"gap f(input) − f(baseline) = {gap:.4f}){escape(note)}</span>"
        )
    if a.method == "attention":
        parts.append("<span class='li-imp-warn'>attention weights, shown for comparison: not an attribution</span>")
    return "<div class='li-imp-info'>" + " · ".join(parts) + "</div>"


def _legend(signed: bool) -> str:
    if not signed:
        return (
            "<div class='li-imp-info li-legend'>magnitude: <span style='background:linear-gradient(90deg,"
            "rgba(54,79,199,0),rgba(54,79,199,1))'></span> more</div>"
        )
    return (
        "<div class='li-imp-info li-legend'>against <span style='background:linear-gradient(90deg,"
        "rgba(224,49,49,1),rgba(224,49,49,0))'></span><span style='background:linear-gradient(90deg,"
        "rgba(54,79,199,0),rgba(54,79,199,1))'></span> for the target</div>"
    )


def text_heatmap(attribution, row: int = 0) -> HTMLView:
    """The source tokens coloured by one target's scores (hover for the value)."""
    scores = attribution.scores[row].tolist()
    top = max((abs(s) for s in scores), default=0.0)
    spans = "".join(
        f"<span title='{score:+.4f}' style='background:{_colour(score, top, attribution.signed)}'>"
        f"{escape(label)}</span>"
        for label, score in zip(attribution.sources, scores, strict=True)
    )
    body = f"{_STYLE}{summary(attribution, row)}<div class='li-imp'>{spans}</div>{_legend(attribution.signed)}"
    return HTMLView(body, "token importance")


def matrix(attribution) -> go.Figure:
    """Target x source heatmap: one row per written token, diverging colours around 0."""
    z = attribution.scores.numpy()
    top = float(np.abs(z).max()) or 1.0
    scale = (
        {"colorscale": "RdBu", "zmid": 0, "zmin": -top, "zmax": top} if attribution.signed else {"colorscale": "Blues"}
    )
    fig = go.Figure(go.Heatmap(z=z, **scale, hovertemplate="target %{y} · source %{x}: %{z:+.4f}<extra></extra>"))
    fig.update_layout(
        title=plotly_text(f"{attribution.method.replace('_', ' ')}: {attribution.quantity}"),
        xaxis={"title": "source", **tick_labels(attribution.sources)},
        yaxis={"title": "target", "autorange": "reversed", **tick_labels(attribution.targets)},
        height=max(300, 32 * len(attribution.targets) + 180),
        **_LAYOUT,
    )
    return fig


def audio(attribution) -> go.Figure:
    """Importance of each audio window for each written token, above the waveform."""
    z = attribution.scores.numpy()
    centres = [(start + end) / 2 for start, end in attribution.windows]
    top = float(np.abs(z).max()) or 1.0
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.05)
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=centres,
            colorscale="RdBu",
            zmid=0,
            zmin=-top,
            zmax=top,
            hovertemplate="%{x:.2f}s · token %{y}: %{z:+.4f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    wave = attribution.waveform
    stride = max(1, len(wave) // 4000)
    fig.add_trace(
        go.Scatter(
            x=np.arange(0, len(wave), stride) / 16000,
            y=wave[::stride],
            mode="lines",
            line={"width": 1, "color": "#495057"},
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1, **tick_labels(attribution.targets))
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_layout(
        title=plotly_text(f"{attribution.method.replace('_', ' ')}: {attribution.baseline}"),
        height=520,
        showlegend=False,
        **_LAYOUT,
    )
    return fig


@takes(Attribution, "m.importance(text, target)")
def importance(attribution):
    """The natural view of an Attribution: coloured text for one target, a matrix for several,
    windows over the waveform for audio."""
    if attribution.windows is not None:
        return audio(attribution)
    if len(attribution.targets) == 1:
        return text_heatmap(attribution)
    return matrix(attribution)


def _name(a, attributions: list) -> str:
    """The method's name, with its baseline when the same method appears twice (baselines side by side)."""
    method = a.method.replace("_", " ")
    return f"{method} · {a.baseline}" if [b.method for b in attributions].count(a.method) > 1 else method


@takes(Attribution, "[m.importance(text, target, method=...), ...]", "list")
def compare_methods(attributions: list, row: int = 0) -> go.Figure:
    """One bar chart per method (or per baseline of one method) for the same target, stacked, so disagreements show."""
    fig = make_subplots(
        rows=len(attributions),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[plotly_text(_name(a, attributions)) for a in attributions],
    )
    for i, a in enumerate(attributions, start=1):
        scores = a.scores[row].numpy()
        colours = ["#364fc7" if s >= 0 or not a.signed else "#e03131" for s in scores]
        fig.add_trace(
            go.Bar(
                x=list(range(len(scores))), y=scores, marker_color=colours, hovertemplate="%{y:+.4f}<extra></extra>"
            ),
            row=i,
            col=1,
        )
    first = attributions[0]
    fig.update_xaxes(showticklabels=True, **tick_labels(first.sources))
    fig.update_layout(
        title=plotly_text(f"why {first.targets[row]!r}? methods side by side"),
        showlegend=False,
        height=170 * len(attributions) + 120,
        **_LAYOUT,
    )
    return fig
