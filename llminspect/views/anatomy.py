"""Lesson 7 views: architectures side by side, parameters per part, memory, head sharing, positions, experts.

Example:
    >>> from llminspect.analysis.anatomy import anatomy
    >>> "Llama-2-7B" in table([anatomy("llama-2-7b")]).body
    True
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.anatomy import BYTES_PER_PARAMETER, PART_OF_KIND, PARTS, kv_cache_bytes, weight_bytes
from llminspect.analysis.arguments import index, whole_number
from llminspect.analysis.attention import kv_groups
from llminspect.analysis.experts import Routing
from llminspect.views.checks import takes
from llminspect.views.colours import KIND_COLOURS
from llminspect.views.html import HTMLView, escape, plotly_text, tick_labels

_LAYOUT = {"template": "plotly_white", "margin": {"l": 150, "r": 20, "t": 60, "b": 50}}
GIB = 2**30
KIND_OF_PART = {part: kind for kind, part in reversed(PART_OF_KIND.items())}  # each part's first kind


def _size(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def table(anatomies) -> HTMLView:
    """One row per architecture: shape, attention kind, positions, parameters (ours vs published), memory."""
    head = (
        "<tr><th>model</th><th>family</th><th>blocks</th><th>hidden</th><th>heads (q / kv)</th><th>attention</th>"
        "<th>positions</th><th>window</th><th>vocab</th><th>context</th><th>parameters</th><th>published</th>"
        "<th>active / token</th><th>bf16 weights</th><th>KV cache / token (bf16)</th></tr>"
    )
    rows = []
    for a in anatomies:
        published = _size(a.published) if a.published else "—"
        active = _size(a.active) + (f" ({a.experts_per_token} of {a.experts} experts)" if a.experts else "")
        cache = f"{kv_cache_bytes(a) / 1024:.0f} KiB" if a.family != "encoder" else "—"
        cells = [
            a.name, a.family, a.layers, a.hidden, f"{a.heads} / {a.kv_heads}", a.attention_kind, a.positions,
            a.sliding_window or "—", f"{a.vocabulary:,}", f"{a.context:,}" if a.context else "—",
            _size(a.total) + (" (tied head)" if a.tied_head else ""), published, active,
            f"{weight_bytes(a) / GIB:.1f} GiB", cache,
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
    style = (
        "<style>.li-anatomy{font:12px sans-serif;border-collapse:collapse}.li-anatomy td,.li-anatomy th"
        "{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}.li-anatomy td:first-child,"
        ".li-anatomy th:first-child{text-align:left}</style>"
    )
    return HTMLView(f"{style}<table class='li-anatomy'>{head}{''.join(rows)}</table>", "architectures")


def parameters(anatomies) -> go.Figure:
    """Where the parameters live: each model's share per part (bars), with its total."""
    names = [plotly_text(f"{a.name}  ({_size(a.total)})") for a in anatomies]
    fig = go.Figure()
    for part in PARTS:
        shares = [a.parts[part] / a.total for a in anatomies]
        if not any(shares):
            continue
        fig.add_trace(
            go.Bar(
                y=names,
                x=shares,
                name=part,
                orientation="h",
                marker_color=KIND_COLOURS[KIND_OF_PART[part]],
                customdata=[a.parts[part] for a in anatomies],
                hovertemplate="%{y}<br>" + part + ": %{customdata:,} (%{x:.1%})<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        title="where the parameters are",
        xaxis={"tickformat": ".0%", "title": "share of parameters"},
        yaxis={"autorange": "reversed"},
        height=140 + 30 * len(anatomies),
        **_LAYOUT,
    )
    return fig


def memory(anatomies, gpu_gib: float = 24, context: int = 4096) -> go.Figure:
    """Weights at each precision plus the KV cache for ``context`` tokens, against one GPU's memory (log scale)."""
    context = whole_number(context, "context")
    names = [plotly_text(a.name) for a in anatomies]
    fig = go.Figure()
    for dtype in BYTES_PER_PARAMETER:
        if dtype == "float16":
            continue
        fig.add_trace(go.Bar(x=names, y=[weight_bytes(a, dtype) / GIB for a in anatomies], name=f"weights {dtype}",
                             hovertemplate="%{x}: %{y:.1f} GiB<extra>" + dtype + "</extra>"))  # fmt: skip
    cache = [
        kv_cache_bytes(a, context) / GIB or None for a in anatomies
    ]  # encoders keep none (and log(0) is not drawn)
    fig.add_trace(go.Bar(x=names, y=cache,
                         name=f"KV cache, {context:,} tokens (bf16)", marker_color="#212529",
                         hovertemplate="%{x}: %{y:.2f} GiB<extra>KV cache</extra>"))  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[gpu_gib] * len(names),
            mode="lines",
            name=f"one {gpu_gib:g} GiB GPU",
            line={"dash": "dash", "color": "#e03131"},
        )
    )  # a trace, not a shape: exact on a log axis
    fig.update_layout(
        barmode="group",
        title="memory before you load: weights at each precision, and the cache a generation keeps",
        yaxis={"type": "log", "title": "GiB"},
        height=460,
        **{**_LAYOUT, "margin": {"l": 60, "r": 20, "t": 60, "b": 120}},
    )
    return fig


def kv_cache(anatomies, context: int = 4096) -> go.Figure:
    """KV cache for ``context`` tokens as built, next to what full multi-head attention would need."""
    decoders = [a for a in anatomies if a.family != "encoder"]
    names = [plotly_text(a.name) for a in decoders]
    fig = go.Figure(
        [
            go.Bar(x=names, y=[kv_cache_bytes(a, context) / GIB for a in decoders], name="as built"),
            go.Bar(
                x=names,
                y=[kv_cache_bytes(a, context, kv_heads=a.heads) / GIB for a in decoders],
                name="with a key/value head per query head (MHA)",
                marker_color="#ced4da",
            ),  # fmt: skip
        ]
    )
    fig.update_layout(barmode="group", title=f"KV cache for {context:,} tokens (bf16)", yaxis_title="GiB",
                      height=420, **{**_LAYOUT, "margin": {"l": 60, "r": 20, "t": 60, "b": 120}})  # fmt: skip
    return fig


def head_sharing(anatomies) -> go.Figure:
    """Each model's query heads (columns), coloured by the key/value head they read: MHA, MQA or GQA at a glance."""
    width = max(a.heads for a in anatomies)
    z, text = [], []
    for a in anatomies:
        groups = kv_groups(a.heads, a.kv_heads)
        z.append([g / max(1, a.kv_heads - 1) for g in groups] + [None] * (width - a.heads))
        text.append(
            [f"query head {h} reads key/value head {g}" for h, g in enumerate(groups)] + [""] * (width - a.heads)
        )
    fig = go.Figure(
        go.Heatmap(
            z=z, text=text, colorscale="Turbo", showscale=False, xgap=1, ygap=4, hovertemplate="%{text}<extra></extra>"
        )  # fmt: skip
    )
    labels = [f"{a.name} · {a.attention_kind} {a.heads}/{a.kv_heads}" for a in anatomies]
    fig.update_layout(
        title="which key/value head each query head reads (same colour = shared)",
        xaxis_title="query head",
        yaxis={"autorange": "reversed", **tick_labels(labels)},
        height=120 + 45 * len(anatomies),
        **{**_LAYOUT, "margin": {"l": 230, "r": 20, "t": 60, "b": 50}},
    )
    return fig


def positions(learned, angles, learned_name: str, rotary_name: str) -> go.Figure:
    """Learned position vectors (a trained table added to the tokens) next to RoPE's angles (a formula turning q/k)."""
    titles = (f"learned: {learned_name}'s position table", f"rotary: {rotary_name}'s angles (mod 2π)")
    fig = make_subplots(1, 2, subplot_titles=[plotly_text(title) for title in titles])
    limit = float(abs(learned).max())
    fig.add_trace(go.Heatmap(z=learned.tolist(), colorscale="RdBu", zmid=0, zmin=-limit, zmax=limit,
                             showscale=False, hovertemplate="position %{y}, feature %{x}: %{z:.3f}<extra></extra>"),
                  1, 1)  # fmt: skip
    fig.add_trace(go.Heatmap(z=(angles % (2 * math.pi)).tolist(), colorscale="Twilight", showscale=False,
                             hovertemplate="position %{y}, pair %{x}: %{z:.2f} rad<extra></extra>"), 1, 2)  # fmt: skip
    fig.update_yaxes(autorange="reversed", title_text="position")
    fig.update_xaxes(title_text="feature", row=1, col=1)
    fig.update_xaxes(title_text="pair of q/k dimensions (fast → slow)", row=1, col=2)
    fig.update_layout(height=420, **{**_LAYOUT, "margin": {"l": 60, "r": 20, "t": 60, "b": 50}})
    return fig


def rope_scaling(scalings) -> go.Figure:
    """Each pair's wavelength (tokens per full turn) for plain RoPE and each scaling; the trained length dashed."""
    first = scalings[0]
    pairs = list(range(len(first.wavelengths)))
    fig = go.Figure(go.Scatter(x=pairs, y=first.wavelengths.tolist(), name="plain RoPE", line={"color": "#868e96"}))
    for scaling in scalings:
        name = f"{scaling.rope_type} ×{scaling.parameters.get('factor', 1):g}"
        fig.add_trace(go.Scatter(x=pairs, y=scaling.wavelengths_scaled.tolist(), name=name, mode="lines"))
    fig.add_hline(y=first.trained_length, line_dash="dash", annotation_text=f"trained length {first.trained_length:,}")
    fig.update_layout(
        title="RoPE scaling: slow pairs stretched so a longer text stays within the angles seen in training",
        xaxis_title="pair of q/k dimensions (fast → slow)", yaxis={"title": "wavelength (tokens)", "type": "log"},
        height=420, **{**_LAYOUT, "margin": {"l": 70, "r": 20, "t": 60, "b": 50}},
    )  # fmt: skip
    return fig


def plan(a, memory_plan) -> HTMLView:
    """A memory plan in words: fits or not, and what offload= would stream per forward pass."""
    used = (memory_plan.weights + memory_plan.kv_cache) / GIB
    gpu = memory_plan.gpu_bytes / GIB
    if memory_plan.fits:
        text = f"<b>{escape(a.name)}</b> fits: {used:.1f} GiB of weights and cache on a {gpu:g} GiB GPU."
    else:
        text = (
            f"<b>{escape(a.name)}</b> does not fit: {used:.1f} GiB of weights and cache for a {gpu:g} GiB GPU. "
            f"With <code>li.load(..., offload='cpu')</code> {memory_plan.resident_blocks} of {a.layers} blocks could "
            f"stay on the GPU and {memory_plan.streamed_blocks} would stream in for every forward pass "
            f"({memory_plan.streamed_bytes_per_pass / GIB:.1f} GiB per pass: about "
            f"{memory_plan.streamed_bytes_per_pass / 25e9:.1f} s over PCIe 4 x16 at 25 GB/s, "
            f"{memory_plan.streamed_bytes_per_pass / 3e9:.0f} s from an NVMe disk at 3 GB/s)."
        )
    return HTMLView(f"<p style='font:14px sans-serif'>{text}</p>", "memory plan")


@takes(Routing, "m.routing(text)")
def routing(routes, layer: int = 0) -> go.Figure:
    """One layer's router: tokens (rows) x experts (columns), the mixing weight of the chosen experts."""
    layer = index(layer, "layer")
    mixing = routes.mixing()[layer]
    text = [[f"{w:.2f}" if w > 0 else "" for w in row] for row in mixing.tolist()]
    fig = go.Figure(
        go.Heatmap(
            z=mixing.tolist(),
            text=text,
            texttemplate="%{text}",
            colorscale="Greens",
            zmin=0,
            zmax=1,
            customdata=routes.logits[layer].tolist(),
            hovertemplate="token %{y}, expert %{x}: weight %{z:.2f}, router score %{customdata:.2f}<extra></extra>",
        )  # fmt: skip
    )
    fig.update_layout(
        title=f"layer {layer}: the {routes.chosen.shape[-1]} experts each token goes to (random weights!)",
        xaxis={"title": "expert", "dtick": 1},
        yaxis={"autorange": "reversed", **tick_labels(routes.tokens)},
        height=160 + 24 * len(routes.tokens),
        **{**_LAYOUT, "margin": {"l": 90, "r": 20, "t": 60, "b": 50}},
    )
    return fig


@takes(Routing, "m.routing(text)")
def expert_load(routes) -> go.Figure:
    """Share of token slots each expert received, per layer; the dashed line is a perfectly balanced router."""
    load = routes.load()
    fig = go.Figure([go.Bar(x=list(range(routes.experts)), y=row.tolist(), name=f"layer {i}")
                     for i, row in enumerate(load)])  # fmt: skip
    fig.add_hline(y=1 / routes.experts, line_dash="dash", annotation_text="balanced")
    fig.update_layout(barmode="group", title="load per expert", xaxis={"title": "expert", "dtick": 1},
                      yaxis={"title": "share of token slots", "tickformat": ".0%"}, height=360,
                      **{**_LAYOUT, "margin": {"l": 60, "r": 20, "t": 60, "b": 50}})  # fmt: skip
    return fig
