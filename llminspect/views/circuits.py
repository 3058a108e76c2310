"""Circuit views: induction heads (the loss on a repeat, every head's score, heads switched off) and direct logit
attribution (each part's share of a logit difference, and the logit lens beside it).

Example:
    >>> import torch
    >>> from llminspect.analysis.circuits import InductionAblation, SwitchedOff
    >>> loss = torch.tensor([float("nan"), 9.0, 9.0, 9.0, 1.0])
    >>> found = InductionAblation(2, loss, [SwitchedOff("top 1 induction heads", [(0, 0)], loss + 1, loss)])
    >>> [bar.y for bar in induction_ablation(found).data]
    [(10.0,), (9.0,)]
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.circuits import Induction, InductionAblation, copy_positions
from llminspect.analysis.logit_attribution import LogitAttribution
from llminspect.views.checks import takes
from llminspect.views.html import plotly_text

_LAYOUT = {"template": "plotly_white", "margin": {"l": 70, "r": 20, "t": 60, "b": 60}}
METHODS = {"zero": "#c92a2a", "mean": "#e67700"}


@takes(Induction, "m.induction(length, seed)")
def induction_losses(found, ablation: InductionAblation | None = None) -> go.Figure:
    """The loss of each token of the repeated text: high on the first copy, low on the second (in-context
    learning); with ``ablation``, the same with the top induction heads switched off (zeroed and at their means)."""
    positions = list(range(len(found.losses)))
    fig = go.Figure(go.Scatter(x=positions, y=found.losses.tolist(), name="every head", mode="lines",
                               line={"color": "#1c3d5a"}))  # fmt: skip
    if ablation is not None:
        top = ablation.sets[0]
        for how, values in (("zero", top.zero), ("mean", top.mean)):
            fig.add_trace(go.Scatter(x=positions, y=values.tolist(), name=f"{top.label} off ({how})", mode="lines",
                                     line={"color": METHODS[how], "dash": "dot"}))  # fmt: skip
    fig.add_vline(x=found.period - 0.5, line_dash="dash", line_color="#868e96")
    first, second = found.loss("first"), found.loss("second")
    fig.update_layout(
        title=plotly_text(f"{found.period} random tokens, then the same again: mean loss {first:.1f} on the first "
                          f"copy, {second:.1f} on the second"),  # fmt: skip
        xaxis={"title": "token position (the dashed line: the repeat starts)"},
        yaxis={"title": "loss = −log p(token) (nats)"}, height=380, **_LAYOUT,
    )
    return fig


@takes(Induction, "m.induction(length, seed)")
def induction_heads(found) -> go.Figure:
    """Two heat maps, layers x heads: each head's induction score and its previous-token score."""
    fig = make_subplots(1, 2, subplot_titles=("induction score: weight on the token after the earlier copy",
                                              "previous-token score: weight on the token just before"))  # fmt: skip
    for column, values in enumerate((found.induction, found.previous_token), start=1):
        fig.add_trace(go.Heatmap(z=values.tolist(), zmin=0, zmax=1, colorscale="Blues", showscale=column == 2,
                                 hovertemplate="head %{y}.%{x}: %{z:.2f}<extra></extra>"), 1, column)  # fmt: skip
        fig.update_xaxes(title_text="head", dtick=1, row=1, col=column)
        fig.update_yaxes(title_text="layer", dtick=2, row=1, col=column)
    best = found.top_heads(1)[0]
    fig.update_layout(title=plotly_text(f"every head on the repeated text (top induction head {best[0]}.{best[1]}: "
                                        f"{float(found.induction[best]):.2f})"), height=560, **_LAYOUT)  # fmt: skip
    return fig


@takes(InductionAblation, "m.induction_ablation(found)")
def induction_ablation(found) -> go.Figure:
    """The second copy's mean loss with each set of heads switched off, zeroed and at their means, against every
    head on (the dashed line)."""
    second = copy_positions(found.period, "second")
    labels = [f"{s.label}<br>{', '.join(f'{layer}.{head}' for layer, head in s.heads)}" for s in found.sets]
    fig = go.Figure()
    for how in ("zero", "mean"):
        values = [float((s.zero if how == "zero" else s.mean)[second].mean()) for s in found.sets]
        fig.add_trace(go.Bar(x=labels, y=values, name=f"{how} ablation", marker_color=METHODS[how],
                             hovertemplate="%{y:.2f}<extra></extra>"))  # fmt: skip
    fig.add_hline(y=found.second_copy(), line_dash="dash", line_color="#1c3d5a",
                  annotation_text=f"every head: {found.second_copy():.2f}")  # fmt: skip
    fig.update_layout(title=plotly_text("second copy's mean loss with heads switched off"), barmode="group",
                      yaxis={"title": "loss (nats)"}, height=420, **_LAYOUT)  # fmt: skip
    return fig


@takes(LogitAttribution, "m.logit_attribution(prompt, answer, other)")
def logit_attribution(found) -> go.Figure:
    """Each attention's and MLP's direct share of the logit difference (bars per layer), and below, the shares
    added up layer by layer beside the logit lens's difference (each layer read with its own scale)."""
    layers = list(range(len(found.attention)))
    fig = make_subplots(2, 1, shared_xaxes=True, vertical_spacing=0.12, row_heights=[0.6, 0.4],
                        subplot_titles=("direct share of each part", "added up after each block, and the logit lens"))
    fig.add_trace(go.Bar(x=layers, y=found.attention.tolist(), name="attention", marker_color="#1971c2"), 1, 1)
    fig.add_trace(go.Bar(x=layers, y=found.mlp.tolist(), name="MLP", marker_color="#2f9e44"), 1, 1)
    fig.add_trace(go.Scatter(x=[-1, *layers], y=found.running.tolist(), name="shares added up (scale frozen)",
                             mode="lines+markers", line={"color": "#1c3d5a"}), 2, 1)  # fmt: skip
    fig.add_trace(go.Scatter(x=[-1, *layers], y=found.lens.tolist(), name="logit lens (each layer's own scale)",
                             mode="lines", line={"color": "#e67700", "dash": "dot"}), 2, 1)  # fmt: skip
    fig.update_xaxes(title_text="layer (−1: the embeddings)", dtick=2, row=2, col=1)
    fig.update_yaxes(title_text="logit difference", row=1, col=1)
    fig.update_layout(
        title=plotly_text(f"logit({found.answer}) − logit({found.other}) = {found.difference:.2f}; the shares add up "
                          f"to {found.total:.2f} (final norm's scale {found.scale:.1f}, frozen)"),  # fmt: skip
        barmode="group", height=620, **_LAYOUT,
    )
    return fig


@takes(LogitAttribution, "m.logit_attribution(prompt, answer, other)")
def head_attribution(found) -> go.Figure:
    """Layers x heads: each head's direct share of the logit difference (blue toward the answer, red away)."""
    top = max(0.1, float(found.heads.abs().max()))
    fig = go.Figure(go.Heatmap(z=found.heads.tolist(), zmin=-top, zmax=top, colorscale="RdBu",
                               colorbar={"title": "share"},
                               hovertemplate="head %{y}.%{x}: %{z:+.2f}<extra></extra>"))  # fmt: skip
    name, value = found.largest(1, heads=True)[0]
    fig.update_layout(
        title=plotly_text(f"each head's direct share of logit({found.answer}) − logit({found.other}); largest: head "
                          f"{name} {value:+.2f}"),  # fmt: skip
        xaxis={"title": "head", "dtick": 1}, yaxis={"title": "layer", "dtick": 2}, height=560, **_LAYOUT,
    )
    return fig
