"""Embedding views: similarity across layers, similarity heatmaps, PCA scatter plots, neighbours.

Charts are plotly figures: JupyterLab draws them offline, and ``views.save`` writes them with
plotly.js inside the file.

Example:
    >>> import torch
    >>> from llminspect.analysis.embeddings import cosine_matrix
    >>> fig = similarity(["a", "b"], cosine_matrix(torch.eye(2)))
    >>> [list(row) for row in fig.data[0].z]
    [[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import itertools

import numpy as np
import plotly.graph_objects as go

from llminspect.analysis.embeddings import Neighbours, Projection, Ranking, WordVectors
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape, plotly_text, tick_labels
from llminspect.views.tokens import STYLE

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 60, "b": 50}}


@takes(WordVectors, "m.word_in_contexts(word, sentences)")
def layer_similarity(word_vectors) -> go.Figure:
    """Cosine between a word's vectors in each pair of contexts, layer by layer (a WordVectors).

    The static vectors of a word are one and the same row of the embedding table, so their cosine
    is 1 in every context: the dashed line. The x axis counts as the whole course does: the first
    point is the embeddings (before layer 0), then the stream after layer 0, 1, … (hidden state
    L + 1 is the stream leaving block L, site ``layer.L.output``).
    """
    similarity = word_vectors.similarity()
    layers = list(range(similarity.shape[0]))
    names = ["emb."] + [str(layer) for layer in layers[:-1]]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=[1.0] * len(layers),
            name="static vectors (embedding table)",
            mode="lines",
            line={"dash": "dash", "color": "grey"},
        )
    )
    for a, b in itertools.combinations(range(len(word_vectors.contexts)), 2):
        name = plotly_text(f"{word_vectors.contexts[a]}  vs  {word_vectors.contexts[b]}")
        fig.add_trace(go.Scatter(x=layers, y=similarity[:, a, b].tolist(), name=name, mode="lines+markers"))
    fig.update_layout(
        title=plotly_text(f"“{word_vectors.word}” in different contexts: cosine similarity per layer"),
        xaxis={"title": "after layer (emb. = the embeddings, before layer 0)", "tickvals": layers, "ticktext": names},
        yaxis_title="cosine similarity",
        legend={"orientation": "h", "y": -0.25},
        height=420,
        **_LAYOUT,
    )
    return fig


def similarity(
    labels: list[str], matrix, title: str = "cosine similarity", fmt: str = ".2f", cosine: bool = True
) -> go.Figure:
    """A labelled heatmap of a square similarity matrix, each cell annotated with its value.

    Cosines get a diverging scale fixed to [-1, 1]; other scores (``cosine=False``, e.g. dot
    products) a sequential one over their own range.
    """
    values = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    scale = {"colorscale": "RdBu", "zmin": -1, "zmax": 1} if cosine else {"colorscale": "Blues"}
    fig = go.Figure(
        go.Heatmap(
            z=values,
            customdata=np.array(
                [[plotly_text(a), plotly_text(b)] for a in labels for b in labels], dtype=object
            ).reshape(len(labels), len(labels), 2),
            **scale,
            texttemplate=f"%{{z:{fmt}}}",
            hovertemplate="%{customdata[0]} · %{customdata[1]}: %{z:.3f}<extra></extra>",
        )
    )
    size = max(360, 48 * len(labels) + 160)
    fig.update_layout(
        title=plotly_text(title),
        width=size + 80,
        height=size,
        xaxis=tick_labels(labels),
        yaxis={"autorange": "reversed", **tick_labels(labels)},
        **_LAYOUT,
    )
    return fig


@takes(Projection, "llminspect.analysis.embeddings.project(vectors, labels)")
def projection(projected) -> go.Figure:
    """A 2-D or 3-D scatter of PCA coordinates (a Projection), labelled and coloured by group."""
    coords = projected.coordinates
    three_d = coords.shape[1] == 3
    fig = go.Figure()
    for group in dict.fromkeys(projected.groups):
        rows = [i for i, g in enumerate(projected.groups) if g == group]
        text = [plotly_text(projected.labels[i]) for i in rows]
        axes = {"x": coords[rows, 0].tolist(), "y": coords[rows, 1].tolist()}
        common = {
            "name": plotly_text(group or "items"),
            "text": text,
            "mode": "markers+text",
            "textposition": "top center",
        }
        if three_d:
            fig.add_trace(go.Scatter3d(z=coords[rows, 2].tolist(), marker={"size": 5}, **axes, **common))
        else:
            fig.add_trace(go.Scatter(marker={"size": 10}, **axes, **common))
    share = [f"PC{i + 1} ({v:.0%} of variance)" for i, v in enumerate(projected.explained_variance)]
    title = f"PCA of {len(projected.labels)} vectors: {sum(projected.explained_variance):.0%} of the variance shown"
    if three_d:
        fig.update_layout(scene={"xaxis_title": share[0], "yaxis_title": share[1], "zaxis_title": share[2]})
    else:
        fig.update_layout(xaxis_title=share[0], yaxis_title=share[1])
    fig.update_layout(title=title, height=520, **_LAYOUT)
    return fig


@takes(Neighbours, "m.nearest_tokens(word) or m.analogy(...)")
def neighbours(result) -> HTMLView:
    """A ranked table of nearest tokens with cosine bars (a Neighbours), saying which tokens were pooled."""
    rows = "".join(
        f"<tr><td>{rank}</td><td><code>{escape(token.replace(' ', '␣'))}</code></td><td>{cosine:.3f}</td>"
        f"<td><span class='li-bar' style='width:{max(1, round(150 * max(cosine, 0)))}px'></span></td></tr>"
        for rank, (token, cosine) in enumerate(zip(result.tokens, result.cosines, strict=True), start=1)
    )
    pooled = ", ".join(escape(p) for p in result.pieces)
    caption = f"nearest to <b>{escape(result.query)}</b> (static vectors; pooled tokens: <code>{pooled}</code>)"
    return HTMLView(
        f"{STYLE}<table class='li-tokens'><caption>{caption}</caption>"
        f"<tr><th>#</th><th>token</th><th>cosine</th><th></th></tr>{rows}</table>",
        "nearest tokens",
    )


@takes(Ranking, "llminspect.analysis.embeddings.paraphrase_ranking(m, ...)", "list")
def rankings(results) -> go.Figure:
    """Bars comparing poolings by how often the paraphrase ranks first, and by mean reciprocal rank."""
    names = [r.pooling for r in results]
    fig = go.Figure(
        [
            go.Bar(name="paraphrase ranked first", x=names, y=[r.top1 for r in results], texttemplate="%{y:.0%}"),
            go.Bar(
                name="mean reciprocal rank",
                x=names,
                y=[r.mean_reciprocal_rank for r in results],
                texttemplate="%{y:.2f}",
            ),
        ]
    )
    fig.update_layout(
        title="Which sentence vector finds paraphrases?",
        yaxis={"range": [0, 1.05]},
        barmode="group",
        height=380,
        **_LAYOUT,
    )
    return fig
