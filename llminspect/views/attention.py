"""Attention views: bertviz offline, and our own views that stay fluid at 1,024 tokens.

``attention(trace)`` opens an explorer: a layer x head overview of one summary (entropy,
distance, attention to the first / previous token / itself), one head's matrix as a heatmap,
and a token picker showing where that token looks and what looks at it. Encoder-decoder traces
get separate encoder self-, decoder self- and cross-attention. Heads are shown one at a time;
an average over heads is offered only as a labelled choice. Axes are positions with token
labels as tick text, so repeated tokens stay apart.

Example:
    >>> import torch
    >>> fig = head_matrix(torch.eye(2), ["a", "b"], ["a", "b"], "one head")
    >>> fig.data[0].z.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.arguments import choice, index, whole_number
from llminspect.analysis.attention import head_mean, kv_groups
from llminspect.analysis.masks import causal_mask, padding_mask, sliding_window_mask
from llminspect.analysis.trace import Trace
from llminspect.errors import InputError
from llminspect.views.bertviz_offline import bertviz_html
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text, tick_labels

_LAYOUT = {"template": "plotly_white", "margin": {"l": 70, "r": 20, "t": 60, "b": 60}}
BERTVIZ_LIMIT = 300
_WEIGHT_STYLE = (
    "<style>.li-weights{font:13px monospace;margin:4px 0}.li-weights b{font-family:sans-serif}"
    ".li-weight{padding:1px 3px;margin:1px;border-radius:3px;display:inline-block;white-space:pre}</style>"
)  # bertviz draws a line per token pair per head: beyond this it is unusable


def head_matrix(weights, rows: list[str], cols: list[str], title: str, height: int = 520) -> go.Figure:
    """One head's attention as a heatmap: row = the token attending (query), column = the token attended (key)."""
    z = np.asarray(weights, dtype=np.float32)
    hover = "query %{y}: " + "key %{x}: %{z:.3f}<extra></extra>"
    custom = {}
    if len(rows) * len(cols) <= 128 * 128:  # name the tokens in the hover when it stays cheap
        names = np.array([plotly_text(r) for r in rows])[:, None], np.array([plotly_text(c) for c in cols])[None, :]
        custom["customdata"] = np.dstack(np.broadcast_arrays(*names))
        hover = "%{customdata[0]} → %{customdata[1]}: %{z:.3f}<extra></extra>"
    fig = go.Figure(go.Heatmap(z=z, colorscale="Blues", zmin=0, hovertemplate=hover, **custom))
    fig.update_layout(
        title=title,
        height=height,
        xaxis={"title": "key (attended to)", **tick_labels(cols)},
        yaxis={"title": "query (attending)", "autorange": "reversed", **tick_labels(rows)},
        **_LAYOUT,
    )
    return fig


def head_overview(statistics: dict, statistic: str, selected: tuple[int, int] | None = None) -> go.Figure:
    """A layers x heads heatmap of one per-head summary, the selected (layer, head) outlined (none for a mean)."""
    values = statistics[statistic].numpy()
    layers, heads = values.shape
    fig = go.Figure(
        go.Heatmap(
            z=values,
            colorscale="Viridis",
            x=list(range(heads)),
            y=list(range(layers)),
            hovertemplate="layer %{y}, head %{x}: %{z:.3f}<extra></extra>",
            colorbar={"title": statistic},
        )
    )
    if selected is not None and selected[1] >= 0:
        layer, head = selected
        fig.add_shape(
            type="rect", x0=head - 0.5, x1=head + 0.5, y0=layer - 0.5, y1=layer + 0.5, line={"color": "red", "width": 3}
        )
    fig.update_layout(
        title=f"{statistic}, per head (mean over query tokens)",
        xaxis={"title": "head", "dtick": 1},
        yaxis={"title": "layer", "dtick": 1 if layers <= 12 else 5},
        height=max(300, 18 * layers + 140),
        width=max(320, 40 * heads + 200),
        **_LAYOUT,
    )
    return fig


def weights_html(labels: list[str], weights, heading: str, selected: int | None = None) -> str:
    """Tokens shaded by a weight each (darker = more), the selected token outlined."""
    weights = np.asarray(weights, dtype=np.float64)
    top = weights.max() if weights.size and weights.max() > 0 else 1.0
    spans = []
    for i, (label, weight) in enumerate(zip(labels, weights, strict=True)):
        border = "outline:2px solid #e03131;" if i == selected else ""
        spans.append(
            f"<span class='li-weight' title='{weight:.3f}' "
            f"style='background:rgba(66,99,235,{weight / top:.3f});{border}'>{escape(label)}</span>"
        )
    return f"{_WEIGHT_STYLE}<div class='li-weights'><b>{escape(heading)}</b><br>{''.join(spans)}</div>"


def attention_parts(trace) -> dict[str, tuple]:
    """The attention kinds of a trace: name -> (tensor, query labels, key labels)."""
    labels = trace.tokens.labels
    if trace.family != "encoder-decoder":
        return {"self-attention": (trace.attentions, labels, labels)}
    if trace.audio_positions is not None:
        step = trace.seconds_per_position
        source = [f"{i * step:.2f}s" for i in range(trace.encoder_attentions.shape[-1])]
    else:
        source = trace.source.labels
    return {
        "encoder self-attention": (trace.encoder_attentions, source, source),
        "decoder self-attention": (trace.attentions, labels, labels),
        "cross-attention": (trace.cross_attentions, labels, source),
    }


def kv_sharing(num_heads: int, num_key_value_heads: int | None) -> go.Figure:
    """Which query heads share each key/value head (grouped-query attention), as a grid."""
    groups = kv_groups(num_heads, num_key_value_heads)
    kv = max(groups) + 1
    grid = np.zeros((kv, num_heads))
    for head, group in enumerate(groups):
        grid[group, head] = 1
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            colorscale=[[0, "#f1f3f5"], [1, "#4263eb"]],
            showscale=False,
            x=list(range(num_heads)),
            y=list(range(kv)),
            xgap=3,
            ygap=3,
            hovertemplate="query head %{x} · key/value head %{y}<extra></extra>",
        )
    )
    kind = "multi-head" if kv == num_heads else "multi-query" if kv == 1 else "grouped-query"
    fig.update_layout(
        title=f"{kind} attention: {num_heads} query heads read {kv} key/value heads",
        xaxis_title="query head",
        yaxis_title="key/value head",
        height=120 + 40 * kv,
        yaxis={"autorange": "reversed", "dtick": 1},
        xaxis={"dtick": 1},
        **_LAYOUT,
    )
    return fig


def masks(n: int = 10, window: int = 3, lengths: tuple[int, int] = (10, 6)) -> go.Figure:
    """The causal mask, a padded sequence's mask, and a sliding-window mask, side by side (dark = may attend)."""
    n, window = whole_number(n, "n"), whole_number(window, "window")
    if not isinstance(lengths, (tuple, list)) or len(lengths) != 2:
        raise InputError(f"lengths={lengths!r}: pass two text lengths, e.g. lengths=(10, 6).")
    lengths = (whole_number(lengths[0], "lengths[0]"), whole_number(lengths[1], "lengths[1]"))
    padded = causal_mask(max(lengths)) & padding_mask(list(lengths))[1][None, :]
    titles = (
        "causal: key j ≤ query i",
        f"causal + padding: a {lengths[1]}-token text in a batch of {max(lengths)}",
        f"sliding window w={window}: i−{window} < j ≤ i ({window} keys)",
    )
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.06)
    for col, mask in enumerate((causal_mask(n), padded, sliding_window_mask(n, window)), start=1):
        fig.add_trace(
            go.Heatmap(
                z=mask.int().numpy(),
                colorscale=[[0, "#f8f9fa"], [1, "#364fc7"]],
                showscale=False,
                xgap=1,
                ygap=1,
                hovertemplate="query %{y}, key %{x}: %{z}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", title_text="query i" if col == 1 else None, row=1, col=col)
        fig.update_xaxes(title_text="key j", row=1, col=col)
    fig.update_layout(height=380, **_LAYOUT)
    return fig


@takes(Trace, "m.trace(audio)")
def audio_cross_attention(trace, heads: list[tuple[int, int]] | None = None, alignment=None) -> go.Figure:
    """Cross-attention of each written token over time, with the waveform beneath (Whisper).

    ``heads`` are averaged (labelled in the title); ``alignment`` (a WordTimes) marks each token's peak.
    """
    cross = trace.cross_attentions
    mean = head_mean(cross, heads).numpy()
    end = min(cross.shape[-1], int(trace.audio_positions * 1.1) + 5)
    step = trace.seconds_per_position
    times = np.arange(end) * step
    labels = trace.tokens.labels
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(
        go.Heatmap(
            z=mean[:, :end],
            x=times,
            y=list(range(len(labels))),
            colorscale="Blues",
            showscale=False,
            hovertemplate="%{x:.2f}s · token %{y}: %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if alignment is not None:
        rows = [i for i, special in enumerate(trace.tokens.special) if not special]
        fig.add_trace(
            go.Scatter(
                x=alignment.seconds,
                y=rows,
                mode="markers",
                name="peak",
                marker={"color": "#e03131", "size": 7, "symbol": "x"},
            ),
            row=1,
            col=1,
        )
    wave = trace.source.waveform
    stride = max(1, len(wave) // 4000)
    fig.add_trace(
        go.Scatter(
            x=np.arange(0, len(wave), stride) / trace.source.sample_rate,
            y=wave[::stride],
            mode="lines",
            line={"width": 1, "color": "#495057"},
            name="waveform",
        ),
        row=2,
        col=1,
    )
    fig.add_vline(x=trace.source.duration, line_dash="dot", line_color="#e03131")
    what = "alignment heads " + ", ".join(f"{layer}.{head}" for layer, head in heads) if heads else "all heads"
    fig.update_yaxes(autorange="reversed", row=1, col=1, **tick_labels(labels))
    fig.update_xaxes(title_text="time (s); the dotted line is the end of the clip", row=2, col=1)
    fig.update_layout(title=f"cross-attention over the audio, mean of {what}", height=560, showlegend=False, **_LAYOUT)
    return fig


@takes(Trace, "m.trace(text)")
def attention(trace, part: str | None = None, layer: int = 0, head: int | str = 0) -> go.Figure:
    """One head's attention map of a trace (``head="mean"``: the labelled mean of the layer's heads).

    ``part`` picks an encoder-decoder's "encoder self-attention", "decoder self-attention" or
    "cross-attention". For switching heads and tokens live, use ``li.labs.attention(trace)``.
    """
    parts = attention_parts(trace)
    part = next(iter(parts)) if part is None else choice(part, "part", parts)
    layer, head = index(layer, "layer"), index(head, "head", ("mean",))
    maps, rows, cols = parts[part]
    if not 0 <= layer < maps.shape[0]:
        raise InputError(f"layer={layer}: the {part} has layers 0 to {maps.shape[0] - 1}.")
    if head == "mean":
        title = f"{part}, layer {layer}, mean of all heads (averaged)"
        return head_matrix(maps[layer].mean(0).numpy(), rows, cols, title)
    if not 0 <= head < maps.shape[1]:
        raise InputError(f"head={head}: the {part} has heads 0 to {maps.shape[1] - 1} (or 'mean').")
    return head_matrix(maps[layer, head].numpy(), rows, cols, f"{part}, layer {layer}, head {head}")


@takes(Trace, "m.trace(text)")
def bertviz(trace, view: str = "head", **options) -> HTMLView:
    """bertviz's "head" or "model" view of a trace, working offline (its scripts ship with llminspect)."""
    if view not in ("head", "model"):
        raise InputError(f"view={view!r}: bertviz has a 'head' and a 'model' view.")
    if trace.family == "encoder-decoder":
        if trace.audio_positions is not None:
            raise InputError(
                "bertviz draws a line per token pair, and Whisper's encoder has 1,500 audio positions: use "
                "li.labs.attention(trace) or views.audio_cross_attention for speech."
            )
        arguments = {
            "encoder_attention": tuple(layer[None] for layer in trace.encoder_attentions),
            "decoder_attention": tuple(layer[None] for layer in trace.attentions),
            "cross_attention": tuple(layer[None] for layer in trace.cross_attentions),
            "encoder_tokens": trace.source.labels,
            "decoder_tokens": trace.tokens.labels,
        }
        html = bertviz_html(view, None, None, **arguments, **options)
    else:
        if len(trace.tokens) > BERTVIZ_LIMIT:
            raise InputError(
                f"{len(trace.tokens)} tokens is too many for bertviz (one line per token pair per head; "
                f"it stops being usable past ~{BERTVIZ_LIMIT}): use li.labs.attention(trace)."
            )
        html = bertviz_html(view, tuple(layer[None] for layer in trace.attentions), trace.tokens.labels, **options)
    return HTMLView(html, f"bertviz {view} view")
