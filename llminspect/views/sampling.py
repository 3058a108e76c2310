"""Sampling views: the knobs lab widget, the branch tree, and surprisal-coloured text.

The lab runs the model once per prompt (and once per appended token); moving a slider only
re-applies transformers' processors to the cached logits (``sampling.NextTokenLab``).

Example:
    >>> from llminspect.analysis.sampling import Surprisal
    >>> "&lt;x&gt;" in surprisal(Surprisal(["<x>"], [3.0], 8.0)).body
    True
"""

from __future__ import annotations

import plotly.graph_objects as go

from llminspect.analysis.sampling import Knobs, NextTokenLab
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text, show_figure

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 90}}
_HOW = {"sampled": "#d0ebff", "greedy": "#d3f9d8", "picked": "#fff3bf"}


def distribution(stages, tokenizer, top: int = 15) -> go.Figure:
    """The top tokens before the knobs (grey) and after them (blue); cut-off tokens stay visible, greyed."""
    before, after = stages[0].probabilities, stages[-1].probabilities
    ids = before.topk(top).indices.tolist()
    labels = [plotly_text(repr(tokenizer.decode([i]))) for i in ids]
    cut = [after[i] == 0 for i in ids]
    fig = go.Figure(
        [
            go.Bar(
                name="model",
                x=labels,
                y=[float(before[i]) for i in ids],
                marker_color="#ced4da",
                hovertemplate="%{x}: %{y:.2%}<extra>model</extra>",
            ),
            go.Bar(
                name="after the knobs",
                x=labels,
                y=[float(after[i]) for i in ids],
                marker_color=["#f1f3f5" if c else "#364fc7" for c in cut],
                hovertemplate="%{x}: %{y:.2%}<extra>after the knobs</extra>",
            ),
        ]
    )
    fig.update_layout(
        barmode="group",
        yaxis={"title": "probability", "tickformat": ".0%"},
        height=360,
        title=f"top {top} next tokens — {stages[-1].kept} kept after the knobs",
        **_LAYOUT,
    )
    return fig


def stages_table(stages) -> str:
    rows = "".join(f"<tr><td>{escape(s.name)}</td><td>{s.entropy:.2f}</td><td>{s.kept:,}</td></tr>" for s in stages)
    return (
        "<table class='li-tokens' style='font:12px sans-serif'><tr><th>stage (generate's order)</th>"
        f"<th>entropy (bits)</th><th>tokens kept</th></tr>{rows}</table>"
    )


def running_text(lab: NextTokenLab) -> str:
    """The text so far, the chosen tokens highlighted by how they were chosen."""
    tokenizer = lab.inspector.tokenizer
    start = lab.ids[: len(lab.ids) - len(lab.chosen)]
    spans = [escape(tokenizer.decode(start, skip_special_tokens=True))]
    for token_id, how in lab.chosen:
        spans.append(
            f"<span title='{how}' style='background:{_HOW[how]};white-space:pre'>"
            f"{escape(tokenizer.decode([token_id]))}</span>"
        )
    legend = " ".join(f"<span style='background:{c};padding:0 4px'>{h}</span>" for h, c in _HOW.items())
    body = "".join(spans)
    return f"<div style='font:15px serif;margin:6px 0'>{body}</div><div style='font:11px sans-serif'>{legend}</div>"


@takes("inspector:Inspector", "li.load(...)")
def knobs_lab(inspector, prompt: str = "The best thing about AI is its ability to", source=None, **start):
    """The sampling lab: sliders for every knob, a seed, and buttons to sample, take the greedy
    token or pick any token, with the distributions redrawn on cached logits."""
    import ipywidgets as widgets

    from llminspect.views.tokens import STYLE

    lab = NextTokenLab(inspector, prompt, source)
    knobs = Knobs(**start)
    style = {"description_width": "130px"}
    sliders = {
        "temperature": widgets.FloatSlider(
            value=knobs.temperature, min=0, max=2, step=0.05, style=style, description="temperature (0=greedy)"
        ),
        "top_k": widgets.IntSlider(value=knobs.top_k, min=0, max=100, style=style, description="top-k (0=off)"),
        "top_p": widgets.FloatSlider(value=knobs.top_p, min=0.01, max=1, step=0.01, style=style, description="top-p"),
        "min_p": widgets.FloatSlider(value=knobs.min_p, min=0, max=0.5, step=0.01, style=style, description="min-p"),
        "repetition_penalty": widgets.FloatSlider(
            value=knobs.repetition_penalty, min=1, max=2, step=0.05, style=style, description="repetition penalty"
        ),
    }
    seed = widgets.IntText(value=0, description="seed", style=style)
    buttons = {name: widgets.Button(description=name) for name in ("sample", "greedy", "pick", "regenerate", "undo")}
    pick = widgets.Dropdown(description="token")
    chart, table, text = widgets.Output(), widgets.HTML(), widgets.HTML()
    draws = {"count": 0}

    def current() -> Knobs:
        return Knobs(**{name: slider.value for name, slider in sliders.items()})

    def redraw(_=None) -> None:
        stages = lab.stages(current())
        show_figure(chart, distribution(stages, inspector.tokenizer))
        table.value = STYLE + stages_table(stages)
        text.value = running_text(lab)
        top = stages[0].probabilities.topk(15).indices.tolist()
        pick.options = [(repr(inspector.tokenizer.decode([i])), i) for i in top]
        pick.value = top[0]

    def sample(_=None) -> None:
        lab.append(lab.sample(current(), seed.value + draws["count"]), "sampled")
        draws["count"] += 1
        redraw()

    def regenerate(_=None) -> None:  # draw the last sampled token again, with the next seed
        if lab.chosen and lab.chosen[-1][1] == "sampled":
            lab.undo()
        sample()

    def greedy(_=None) -> None:
        lab.append(int(lab.stages(current())[-1].probabilities.argmax()), "greedy")
        redraw()

    def picked(_=None) -> None:
        lab.append(pick.value, "picked")
        redraw()

    def undo(_=None) -> None:
        lab.undo()
        redraw()

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    for name, handler in {
        "sample": sample,
        "greedy": greedy,
        "pick": picked,
        "regenerate": regenerate,
        "undo": undo,
    }.items():
        buttons[name].on_click(handler)
    redraw()
    widget = widgets.VBox(
        [
            widgets.HBox([widgets.VBox(list(sliders.values()) + [seed]), table]),
            widgets.HBox(
                [buttons["sample"], buttons["greedy"], pick, buttons["pick"], buttons["regenerate"], buttons["undo"]]
            ),
            text,
            chart,
        ]
    )
    widget.lab, widget.sliders, widget.buttons, widget.chart = lab, sliders, buttons, chart
    return widget


@takes("analysis.sampling:Branch", "sampling.branches(m, prompt)", "list")
def tree(branches) -> go.Figure:
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


@takes("analysis.sampling:Surprisal", "sampling.surprisal(m, text)")
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
