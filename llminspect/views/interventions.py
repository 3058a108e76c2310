"""Intervention views: the answer with and without some heads, every head's effect, activation patching.

Example:
    >>> import torch
    >>> from llminspect.analysis.interventions import HeadEffects
    >>> figure = head_effects(HeadEffects("<p>", "␣Paris", "zero", 0.7, torch.zeros(2, 3)))
    >>> figure.data[0].z
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
"""

from __future__ import annotations

import plotly.graph_objects as go

from llminspect.analysis.interventions import Ablation, HeadEffects, Patching
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text, tick_labels
from llminspect.views.tokens import STYLE, next_tokens_html

_LAYOUT = {"template": "plotly_white", "margin": {"l": 70, "r": 20, "t": 60, "b": 60}}


@takes(Ablation, "m.ablation(prompt, answer, heads)")
def ablation(result) -> HTMLView:
    """The top next tokens with every head, beside those with the chosen heads switched off."""
    heads = ", ".join(f"{layer}.{head}" for layer, head in result.heads)
    heads = f"{'head' if len(result.heads) == 1 else 'heads'} {heads}" if heads else "no head"
    before = next_tokens_html(f"every head: p({result.answer}) = {result.p_before:.1%}", result.before)
    after = next_tokens_html(f"{heads} set to {result.how}: p({result.answer}) = {result.p_after:.1%}", result.after)
    body = (
        f"{STYLE}<p>after <code>{escape(result.prompt)}</code></p>"
        f"<div style='display:flex;gap:24px;align-items:flex-start'>{before}{after}</div>"
    )
    return HTMLView(body, "head ablation")


@takes(HeadEffects, "m.head_effects(prompt, answer)")
def head_effects(effects) -> go.Figure:
    """Layers x heads: how much log p(answer) changes when that head alone is switched off (red = it helped)."""
    change = effects.change.tolist()
    top = max(0.1, float(effects.change.abs().max()))
    fig = go.Figure(
        go.Heatmap(
            z=change,
            colorscale="RdBu",
            zmin=-top,
            zmax=top,
            colorbar={"title": "Δ log p"},
            hovertemplate="layer %{y}, head %{x}: log p changes by %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=plotly_text(
            f"each head switched off ({effects.how}) alone: change of log p({effects.answer}), "
            f"p = {effects.p_answer:.1%} with every head"
        ),
        xaxis={"title": "head", "dtick": 1},
        yaxis={"title": "layer", "dtick": 2},
        height=min(220 + 18 * len(change), 760),
        **_LAYOUT,
    )
    return fig


@takes(Patching, "m.patching(clean, corrupt, answer)")
def patching(result) -> go.Figure:
    """Layers x positions: p(answer) of the corrupted prompt with the clean stream put back there."""
    columns = [f"{c} → {d}" if c != d else c for c, d in zip(result.corrupt, result.clean, strict=True)]
    fig = go.Figure(
        go.Heatmap(
            z=result.restored.tolist(),
            customdata=result.p_patched.tolist(),
            colorscale="Purples",
            zmin=0,
            zmax=1,
            colorbar={"title": "restored"},
            hovertemplate="after block %{y}, at %{x}: p = %{customdata:.1%} (restored %{z:.0%})<extra></extra>",
        )
    )
    fig.update_layout(
        title=plotly_text(
            f"activation patching: p({result.answer}) is {result.p_clean:.1%} clean, {result.p_corrupt:.2%} "
            "corrupted; each cell puts one clean vector back"
        ),
        xaxis={"title": "position (corrupted → clean token)", **tick_labels(columns)},
        yaxis={"title": "after block", "dtick": 2},
        height=min(220 + 16 * result.p_patched.shape[0], 760),
        **_LAYOUT,
    )
    return fig
