"""Precision views: one matrix at each precision, the model's guesses at each, and activation outliers.

Example:
    >>> import torch
    >>> from llminspect.analysis.precision import matrix_precisions
    >>> figure = matrix(matrix_precisions(torch.randn(4, 64)))
    >>> list(figure.data[0].x)
    ['float32', 'bfloat16', 'float16', 'Q8_0', 'Q4_0']
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.precision import ActivationOutliers, MatrixPrecisions, PrecisionEffect
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text, tick_labels

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 70, "b": 60}}


@takes(MatrixPrecisions, "matrix_precisions(weight)")
def matrix(result) -> go.Figure:
    """Left: bytes at each precision; right: how far the stored values land from float32 (a sample)."""
    rows = result.rows + ([result.shipped] if result.shipped else [])
    fig = make_subplots(1, 2, subplot_titles=("size of the matrix (KiB)", "stored − float32 (20,000 weights)"))
    fig.add_trace(go.Bar(x=[r.name for r in rows], y=[r.bytes / 1024 for r in rows], marker_color="#364fc7",
                         customdata=[[r.bits_per_weight, r.largest_error] for r in rows],
                         hovertemplate="%{x}: %{y:.0f} KiB, %{customdata[0]:.1f} bits a weight, "
                                       "largest error %{customdata[1]:.2g}<extra></extra>"), 1, 1)  # fmt: skip
    for r in rows[1:]:
        if r.largest_error > 0:
            fig.add_trace(go.Histogram(x=r.errors.tolist(), name=r.name, opacity=0.6, nbinsx=80), 1, 2)
    fig.update_yaxes(type="log", row=1, col=2)
    shape = " × ".join(str(n) for n in result.shape)
    fig.update_layout(title=plotly_text(f"one {shape} weight matrix at each precision"), barmode="overlay", height=380,
                      **_LAYOUT)  # fmt: skip
    return fig


@takes(PrecisionEffect, "m.precisions(texts)", "list")
def effects(found) -> HTMLView:
    """Per precision: the blocks' weight bytes, the KL from float32's next-token guesses, top-token agreement."""
    rows = "".join(
        f"<tr><td>{escape(e.name)}</td><td>{e.weight_bytes / 2**20:,.0f} MiB</td><td>{e.kl:.4f}</td>"
        f"<td>{e.agreement:.0%}</td></tr>"
        for e in found
    )
    return HTMLView(
        "<table class='li-steps' style='font:13px sans-serif'><caption>the model's block weights at each precision, "
        "against float32</caption><tr><th>precision</th><th>block weights</th><th>KL from float32 (bits)</th>"
        f"<th>same top token</th></tr>{rows}</table>",
        "precision effects",
    )


@takes(ActivationOutliers, "m.activation_outliers(text, layer)")
def outliers(result) -> go.Figure:
    """Each token's error after an 8-bit round trip: one scale for the tensor, one per token, and one per token
    with the outlier feature dimensions kept aside."""
    labels, x = result.tokens, list(range(len(result.tokens)))
    dims = ", ".join(str(d) for d in result.outlier_dims)
    fig = go.Figure([
        go.Bar(x=x, y=result.error_all, name="one scale for all tokens", marker_color="#e03131",
               customdata=result.largest,
               hovertemplate="largest |activation| %{customdata:,.0f}: error %{y:.1%}<extra></extra>"),
        go.Bar(x=x, y=result.error_per_token, name="one scale per token", marker_color="#364fc7",
               hovertemplate="error %{y:.2%}<extra></extra>"),
        go.Bar(x=x, y=result.error_dims_kept, name=plotly_text(f"per token, dims {dims} kept in 16 bits"),
               marker_color="#2f9e44", hovertemplate="error %{y:.2%}<extra></extra>"),
    ])  # fmt: skip
    outlier = labels[result.outlier]
    fig.update_layout(
        title=plotly_text(f"8-bit residual stream after block {result.layer}: {outlier!r} reaches "
                          f"{result.largest[result.outlier]:,.0f}"),  # fmt: skip
        xaxis=tick_labels(labels), yaxis={"title": "relative error of the token's vector", "tickformat": ".0%"},
        barmode="group", height=380, **_LAYOUT,
    )  # fmt: skip
    return fig


@takes(ActivationOutliers, "m.activation_outliers(text, layer)")
def dimensions(result) -> go.Figure:
    """Each feature dimension's largest |value| over the ordinary tokens (the sink left out): a few stand out."""
    largest = result.dimension_largest
    colours = ["#e03131" if d in result.outlier_dims else "#868e96" for d in range(len(largest))]
    median = sorted(largest)[len(largest) // 2]
    fig = go.Figure(go.Bar(x=list(range(len(largest))), y=largest, marker_color=colours,
                           hovertemplate="dimension %{x}: largest |value| %{y:.1f}<extra></extra>"))  # fmt: skip
    fig.update_layout(
        title=plotly_text(f"after block {result.layer}, tokens but {result.tokens[result.outlier]!r}: "
                          + ", ".join(f"dimension {d} reaches {largest[d]:.0f}" for d in result.outlier_dims)
                          + f"; the median dimension {median:.1f}"),  # fmt: skip
        xaxis={"title": "feature dimension"}, yaxis={"title": "largest |value|"}, height=320, **_LAYOUT,
    )  # fmt: skip
    return fig
