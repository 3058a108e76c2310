"""Layer-by-layer views: the model's outline, a step-through of a walk, the residual stream, the logit lens, RoPE.

Example:
    >>> import torch
    >>> from llminspect.analysis.steps import Step, Walk
    >>> walk = Walk("decoder", "hooks", None, [Step("<b>", "embedding", "embed", torch.ones(2, 3))])
    >>> "&lt;b&gt;" in steps_table(walk).body
    True
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.by_hand.opened import OpenedBlock
from llminspect.analysis.lens import LogitLens
from llminspect.analysis.outline import ModuleNode
from llminspect.analysis.residual import ResidualStream
from llminspect.analysis.rope import Rotary
from llminspect.analysis.steps import Walk
from llminspect.views.checks import takes
from llminspect.views.colours import background
from llminspect.views.html import HTMLView, escape, plotly_text, tick_labels

_LAYOUT = {"template": "plotly_white", "margin": {"l": 70, "r": 20, "t": 50, "b": 60}}
_STYLE = (
    "<style>.li-outline{font:12px/1.6 monospace}.li-outline details{margin-left:1.2em}"
    ".li-outline summary{cursor:pointer}.li-outline .k{padding:0 4px;border-radius:3px}"
    ".li-outline .p{color:#868e96}.li-outline .s{color:#1c7ed6}"
    ".li-steps{font:12px sans-serif;border-collapse:collapse}.li-steps td,.li-steps th{padding:2px 8px;"
    "border-bottom:1px solid #eee;text-align:left}</style>"
)


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


@takes(ModuleNode, "m.outline(walk)")
def outline(tree, open_levels: int = 2) -> HTMLView:
    """A ``walk.module_tree`` as a clickable outline: class, parameters, settings and output shapes.

    Repeated blocks show once in full; the others collapse to one line each.
    """
    open_levels = whole_number(open_levels, "open_levels", minimum=0)

    def node(item, depth: int) -> str:
        shape = f" <span class='s'>→ {shape_text(item.output_shape)}</span>" if item.output_shape else ""
        if item.same_as_first:
            return f"<div style='margin-left:1.2em'>{escape(item.name)}: same parts as 0{shape}</div>"
        detail = f" <span class='p'>{escape(item.details)}</span>" if item.details else ""
        head = (
            f"<span class='k' style='background:{background(item.kind)}'>{escape(item.name)}</span> "
            f"{escape(item.type)} <span class='p'>{_count(item.parameters)} params</span>{detail}{shape}"
        )
        if not item.children:
            return f"<div style='margin-left:1.2em'>{head}</div>"
        inner = "".join(node(child, depth + 1) for child in item.children)
        opened = " open" if depth < open_levels else ""
        return f"<details{opened}><summary>{head}</summary>{inner}</details>"

    return HTMLView(f"{_STYLE}<div class='li-outline'>{node(tree, 0)}</div>", "model outline")


@takes(Walk, "m.walk(text)")
def steps_table(walk) -> HTMLView:
    """Every step of a walk: what ran, on which shapes, and the mean size (L2 norm per token) of its output."""
    rows = []
    for index, step in enumerate(walk):
        inputs = ", ".join(shape_text(s) for s in step.input_shapes)
        size = step.output.norm(dim=-1).mean() if step.output.dim() >= 1 else step.output.abs()
        rows.append(
            f"<tr style='background:{background(step.kind)}'><td>{index}</td><td>{escape(step.name)}</td>"
            f"<td>{escape(step.kind)}</td><td><code>{escape(step.module)}</code></td><td>{escape(inputs)}</td>"
            f"<td>{escape(shape_text(step.output_shape))}</td><td>{float(size):.2f}</td></tr>"
        )
    head = "<tr><th>#</th><th>step</th><th>kind</th><th>module</th><th>in</th><th>out</th><th>mean ‖out‖</th></tr>"
    return HTMLView(f"{_STYLE}<table class='li-steps'>{head}{''.join(rows)}</table>", "walk steps")


def step_figure(step, tokens: list[str] | None, dims: int = 64) -> go.Figure:
    """One step's output as a heatmap: positions down, the first ``dims`` features across."""
    dims = whole_number(dims, "dims")
    values = step.output
    if values.dim() == 1:
        values = values[None]
    values = values.reshape(values.shape[0], -1)[:, :dims]
    labels = tokens if tokens and len(tokens) == values.shape[0] else [str(i) for i in range(values.shape[0])]
    limit = float(values.abs().max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=values.tolist(),
            colorscale="RdBu",
            zmid=0,
            zmin=-limit,
            zmax=limit,
            hovertemplate="position %{y}, feature %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=plotly_text(f"{step.name}  {shape_text(step.output_shape)} (first {values.shape[1]} features)"),
        yaxis={"autorange": "reversed", **tick_labels(labels, 40)},
        xaxis={"title": "feature"},
        height=min(120 + 18 * values.shape[0], 600),
        **_LAYOUT,
    )
    return fig


@takes(ResidualStream, "llminspect.analysis.residual.residual_stream(walk)")
def residual_stream(stream) -> go.Figure:
    """Left: the stream's size at each point, one line per token. Right: what each sub-layer adds (mean over tokens)."""
    fig = make_subplots(
        1, 2, subplot_titles=("‖residual stream‖ per token", "‖what each sub-layer adds‖, mean over tokens")
    )
    for t, token in enumerate(stream.tokens):
        fig.add_trace(
            go.Scatter(
                x=list(range(len(stream.stream_labels))),
                y=stream.stream_norm[:, t].tolist(),
                name=plotly_text(token),
                mode="lines",
                text=[plotly_text(label) for label in stream.stream_labels],
                hovertemplate="%{text}: %{y:.1f}<extra>" + plotly_text(token) + "</extra>",
            ),
            1,
            1,
        )
    kinds = sorted({label.split(" · ")[-1] for label in stream.added_labels})
    for kind in kinds:
        picked = [i for i, label in enumerate(stream.added_labels) if label.endswith(kind)]
        fig.add_trace(
            go.Bar(
                x=[stream.added_labels[i].split(" · ")[0] for i in picked],
                y=[float(stream.added_norm[i].mean()) for i in picked],
                name=plotly_text(kind),
                hovertemplate="%{x}: %{y:.2f}<extra>" + plotly_text(kind) + "</extra>",
            ),
            1,
            2,
        )
    fig.update_layout(barmode="group", height=420, **_LAYOUT)
    # log scales: a few "massive activations" (often the first token's) would flatten everything else
    fig.update_yaxes(type="log")
    fig.update_xaxes(title_text="point in the stack (hover for its name)", row=1, col=1)
    return fig


@takes(LogitLens, "m.logit_lens(text)")
def logit_lens(lens, color: str = "probability") -> go.Figure:
    """Layers (rows) x positions (columns): the top next-token guess, coloured by its probability or the entropy."""
    if color not in ("probability", "entropy"):
        raise ValueError("color= is 'probability' or 'entropy'.")
    z = lens.top_probs if color == "probability" else lens.entropy
    text = [[plotly_text(t) for t in row] for row in lens.top_tokens]
    fig = go.Figure(
        go.Heatmap(
            z=z.tolist(),
            text=text,
            texttemplate="%{text}",
            textfont={"size": 10},
            colorscale="Blues" if color == "probability" else "Oranges",
            zmin=0,
            zmax=1 if color == "probability" else None,
            colorbar={"title": "p(top)" if color == "probability" else "bits"},
            customdata=lens.answer_rank.tolist(),
            hovertemplate="%{y}, after token %{x}: top %{text} (%{z:.2f}); answer rank %{customdata}<extra></extra>",
        )
    )
    rows = len(lens.layers)
    fig.update_layout(
        title=plotly_text(f"logit lens — top next token per layer ({color}); last row = the model's output"),
        xaxis={"title": "position (predicts the token after it)", **tick_labels(lens.tokens.labels)},
        yaxis={"tickmode": "array", "tickvals": list(range(rows)), "ticktext": lens.layers},
        height=min(200 + 16 * rows, 900),
        **_LAYOUT,
    )
    return fig


@takes(LogitLens, "m.logit_lens(text, answer=...)")
def answer_rank(lens, position: int = -1) -> go.Figure:
    """The answer token's rank (1 = top guess) and probability at each layer, at one position."""
    ranks = lens.answer_rank[:, position].tolist()
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=lens.layers, y=ranks, name="rank", mode="lines+markers"), secondary_y=False)
    fig.add_trace(
        go.Scatter(x=lens.layers, y=lens.answer_prob[:, position].tolist(), name="probability", mode="lines"),
        secondary_y=True,
    )
    top = max(ranks)  # rank 1 at the top of a log axis: the range runs from the worst rank down to 1
    fig.update_yaxes(type="log", title_text="rank (log)", range=[math.log10(top) + 0.1, -0.1], secondary_y=False)
    fig.update_yaxes(title_text="probability", tickformat=".0%", secondary_y=True, range=[0, 1], tickmode="linear",
                     dtick=0.2, showgrid=False)  # fmt: skip
    token = lens.tokens.labels[position]
    fig.update_layout(title=plotly_text(f"where does {lens.answer} appear? (after {token!r})"), height=360, **_LAYOUT)
    return fig


@takes(Rotary, "m.rotary(text)")
def rotary(rope, pairs: tuple[int, ...] | None = None) -> go.Figure:
    """Left: the angle each pair of q/k dimensions is turned by, per position. Right: pairs of the query, turned.

    ``pairs`` to draw on the right: by default the fastest pair and one halfway to the slowest.
    """
    pairs = tuple(dict.fromkeys(pairs if pairs is not None else (0, rope.pairs // 2)))
    for index in pairs:
        rope.pair_dims(index)  # a clear error for a pair this head does not have
    fig = make_subplots(1, 2, subplot_titles=("angle = position × frequency (mod 2π)", "query pairs, turned by RoPE"))
    wrapped = (rope.angles % (2 * math.pi)).tolist()
    fig.add_trace(
        go.Heatmap(
            z=wrapped,
            colorscale="Twilight",
            zmin=0,
            zmax=2 * math.pi,
            showscale=False,
            hovertemplate="position %{y}, pair %{x}: %{z:.2f} rad<extra></extra>",
        ),  # fmt: skip
        1,
        1,
    )
    colours = ["#1c7ed6", "#e8590c", "#2f9e44"]
    for index in pairs:
        before, after = rope.pair(index)
        for t, token in enumerate(rope.tokens):
            for vector, dash, when in ((before[t], "dot", "before"), (after[t], "solid", "after")):
                fig.add_trace(
                    go.Scatter(
                        x=[0, float(vector[0])],
                        y=[0, float(vector[1])],
                        mode="lines+markers+text" if when == "after" else "lines",
                        text=["", plotly_text(token)],
                        textposition="top center",
                        line={"dash": dash, "color": colours[pairs.index(index) % len(colours)]},
                        opacity=1.0 if when == "after" else 0.35,
                        legendgroup=f"pair {index}",
                        name=f"pair {index} (dotted: before)",
                        showlegend=t == 0 and when == "after",
                        hovertemplate=plotly_text(f"pair {index}, {token} ({when})") + "<extra></extra>",
                    ),
                    1,
                    2,
                )
    fig.update_yaxes(autorange="reversed", title_text="position", row=1, col=1, **tick_labels(rope.tokens))
    fig.update_xaxes(title_text="pair (fast → slow)", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    turned = f"{rope.rotary_dims} of {rope.head_dim} dims turned" if rope.head_dim != rope.rotary_dims else ""
    layout = "pairs (2i, 2i+1)" if rope.layout == "interleaved" else "pairs (i, i+d/2)"
    details = ", ".join(part for part in (layout, turned) if part)
    fig.update_layout(height=420, title=f"RoPE in layer {rope.layer}, head {rope.head} ({details})", **_LAYOUT)
    return fig


@takes(OpenedBlock, "m.open_block(text, layer, head)")
def opened_block(block, numbers: int = 4) -> HTMLView:
    """Each step of an opened block: formula, shape, the last token's first numbers, and the gap to the model."""
    rows = []
    for step in block.steps:
        row = step.value[-1].flatten()[:numbers].tolist()
        check = f"= {escape(step.model)} (largest gap {step.difference:.1e})" if step.model else ""
        rows.append(
            f"<tr><td>{escape(step.name)}</td><td><code>{escape(step.formula)}</code></td>"
            f"<td>{escape(shape_text(tuple(step.value.shape)))}</td>"
            f"<td><code>{escape(', '.join(f'{v:.3f}' for v in row))} …</code></td><td>{check}</td></tr>"
        )
    caption = (
        f"layer {block.layer}, query head {block.head} (reads key/value head {block.kv_head}); "
        f"numbers: the last token ({escape(block.tokens[-1])}), first {numbers} of its row"
    )
    header = "<tr><th>step</th><th>by hand</th><th>shape</th><th>numbers</th><th>the model's own result</th></tr>"
    return HTMLView(f"{_STYLE}<table class='li-steps'><caption>{caption}</caption>{header}{''.join(rows)}</table>",
                    "a block by hand")  # fmt: skip
