"""Sampling views: the distribution before and after the knobs, each stage's entropy, the branch tree,
and surprisal-coloured text. The live lab that uses them is ``llminspect.labs.sampling``.

Example:
    >>> from llminspect.analysis.next_token import Surprisal
    >>> "&lt;x&gt;" in surprisal(Surprisal(["<x>"], [3.0], 8.0)).body
    True
"""

from __future__ import annotations

import plotly.graph_objects as go

from llminspect.analysis.next_token import Branch, Surprisal
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 90}}
_HOW = {"sampled": "#d0ebff", "greedy": "#d3f9d8", "picked": "#fff3bf"}


def running_text(start: str, chosen: list[tuple[str, str]]) -> str:
    """The text so far: ``start``, then each chosen token's text highlighted by how it was chosen."""
    spans = [escape(start)]
    for piece, how in chosen:
        spans.append(f"<span title='{how}' style='background:{_HOW[how]};white-space:pre'>{escape(piece)}</span>")
    legend = " ".join(f"<span style='background:{c};padding:0 4px'>{h}</span>" for h, c in _HOW.items())
    body = "".join(spans)
    return f"<div style='font:15px serif;margin:6px 0'>{body}</div><div style='font:11px sans-serif'>{legend}</div>"


def stages_table(stages) -> str:
    rows = "".join(f"<tr><td>{escape(s.name)}</td><td>{s.entropy:.2f}</td><td>{s.kept:,}</td></tr>" for s in stages)
    return (
        "<table class='li-tokens' style='font:12px sans-serif'><tr><th>stage (generate's order)</th>"
        f"<th>entropy (bits)</th><th>tokens kept</th></tr>{rows}</table>"
    )


@takes(Branch, "m.branches(prompt)", "list")
def branches(branches) -> go.Figure:
    """The continuation tree as a sunburst: each ring is one more token, sized by path probability."""
    ids, labels, parents, values = [], [], [], []
    seen = {}
    for branch in branches:
        for depth in range(1, len(branch.tokens) + 1):
            key = "\u241f".join(branch.tokens[:depth])
            parent = "\u241f".join(branch.tokens[: depth - 1])
            seen[key] = seen.get(key, 0.0) + (branch.probability if depth == len(branch.tokens) else 0.0)
            if key not in ids:
                ids.append(key)
                labels.append(plotly_text(branch.tokens[depth - 1]))
                parents.append(parent)
    values = [seen[key] for key in ids]
    fig = go.Figure(
        go.Sunburst(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            branchvalues="remainder",
            hovertemplate="%{label}: path probability %{value:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="continuations: each ring adds a token", height=480, margin={"t": 50, "l": 0, "r": 0, "b": 0}
    )
    return fig


@takes(Surprisal, "m.surprisal(text)")
def surprisal(result) -> HTMLView:
    """Tokens coloured by surprisal (darker = more surprising), with the perplexity."""
    top = max(result.bits, default=1.0) or 1.0
    spans = "".join(
        f"<span title='{bits:.2f} bits' style='background:rgba(240,140,0,{min(1.0, bits / top):.3f});"
        f"padding:1px 2px;white-space:pre'>{escape(label)}</span>"
        for label, bits in zip(result.tokens, result.bits, strict=True)
    )
    return HTMLView(
        f"<div style='font:12px sans-serif'>perplexity {result.perplexity:.2f} · mean surprisal "
        f"{sum(result.bits) / len(result.bits):.2f} bits per token (the first token is not scored)</div>"
        f"<div style='font:15px monospace;line-height:1.8'>{spans}</div>",
        "surprisal",
    )
