"""The attention explorer: one trace, every layer and head, a token's row as text, live.

A layer x head overview of one summary (entropy, distance, attention to the first / previous
token / itself), one head's map as a heatmap, and a token picker showing where that token looks
and what looks at it. Encoder-decoder traces get separate encoder self-, decoder self- and
cross-attention. Heads are shown one at a time; an average over heads is offered only as a
labelled choice. ``masks`` draws the causal, padding and sliding-window masks with a window slider.

Example:
    >>> import llminspect as li
    >>> explorer = attention(li.load("toy-seq2seq").trace("happy bird"), part="cross-attention")
    >>> explorer.part.value, explorer.matrix.data[0].z.shape
    ('cross-attention', (4, 3))
"""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from llminspect.analysis.attention import STATISTICS, head_statistics, kv_groups
from llminspect.labs.display import show_figure
from llminspect.views.attention import attention_parts, head_matrix, head_overview, weights_html
from llminspect.views.attention import masks as mask_figure
from llminspect.views.checks import takes

MEAN = -1  # head selector value for the (labelled) average over heads


@takes("analysis.trace:Trace", "m.trace(text)")
def attention(trace, part: str | None = None, layer: int = 0, head: int | str = 0) -> AttentionExplorer:
    """Explore a trace's attention: summaries of every head, one head's map, one token's row and column."""
    return AttentionExplorer(trace, part, layer, head)


class AttentionExplorer:
    """The interactive explorer widget; ``layer``, ``head``, ``token``, ``part`` and ``statistic``
    are its controls, ``matrix`` the last head heatmap drawn. ``head="mean"`` starts on the
    average over heads, which is always labelled as such."""

    def __init__(self, trace, part: str | None = None, layer: int = 0, head: int | str = 0) -> None:
        head = MEAN if head == "mean" else head

        self.parts = attention_parts(trace)
        self.kv_heads = trace.num_key_value_heads
        self._statistics: dict[str, dict] = {}
        first = part or next(iter(self.parts))
        attn = self.parts[first][0]
        self.part = widgets.ToggleButtons(  # tab-like: one button per kind of attention
            options=list(self.parts), value=first, style={"button_width": "180px"}
        )
        self.statistic = widgets.Dropdown(options=STATISTICS, value="entropy", description="summary")
        self.layer = widgets.IntSlider(value=layer, min=0, max=attn.shape[0] - 1, description="layer")
        heads = [(f"head {h}", h) for h in range(attn.shape[1])] + [("mean of all heads (averaged)", MEAN)]
        self.head = widgets.Dropdown(options=heads, value=head, description="head")
        self.token = widgets.Dropdown(description="token")
        self.overview_out, self.matrix_out = widgets.Output(), widgets.Output()
        self.note, self.weights = widgets.HTML(), widgets.HTML()
        self.matrix: go.Figure | None = None
        self._set_tokens()
        self.part.observe(self._on_part, names="value")
        self.statistic.observe(lambda _: self._draw_overview(), names="value")
        for control in (self.layer, self.head):
            control.observe(lambda _: self._draw_head(), names="value")
        self.token.observe(lambda _: self._draw_weights(), names="value")
        tabs = [self.part] if len(self.parts) > 1 else []
        top = widgets.HBox([widgets.VBox([self.statistic, self.layer, self.head, self.note]), self.overview_out])
        self.widget = widgets.VBox([*tabs, top, self.matrix_out, self.token, self.weights])
        self._draw_overview()
        self._draw_head()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def statistics(self) -> dict:
        name = self.part.value
        if name not in self._statistics:
            self._statistics[name] = head_statistics(self.parts[name][0])
        return self._statistics[name]

    def _set_tokens(self) -> None:
        rows = self.parts[self.part.value][1]
        self.token.options = [(f"{i}: {label}", i) for i, label in enumerate(rows)]
        self.token.value = (
            len(rows) - 1 if "self" in self.part.value and self.part.value != "encoder self-attention" else 0
        )

    def _on_part(self, _change) -> None:
        attn = self.parts[self.part.value][0]
        self.layer.max = attn.shape[0] - 1
        self._set_tokens()
        self._draw_overview()
        self._draw_head()

    def _weights(self):
        attn = self.parts[self.part.value][0][self.layer.value]
        return attn.mean(0) if self.head.value == MEAN else attn[self.head.value]

    def _draw_overview(self) -> None:
        stats = self.statistics()
        statistic = self.statistic.value if self.statistic.value in stats else "entropy"
        show_figure(self.overview_out, head_overview(stats, statistic, (self.layer.value, self.head.value)))

    def _draw_head(self) -> None:
        name, (_, rows, cols) = self.part.value, self.parts[self.part.value]
        which = "mean of all heads (averaged)" if self.head.value == MEAN else f"head {self.head.value}"
        self.matrix = head_matrix(self._weights().numpy(), rows, cols, f"{name}, layer {self.layer.value}, {which}")
        show_figure(self.matrix_out, self.matrix)
        self._draw_note()
        self._draw_weights()
        self._draw_overview()

    def _draw_note(self) -> None:
        heads = self.parts[self.part.value][0].shape[1]
        if self.head.value == MEAN or not self.kv_heads or self.kv_heads == heads or "cross" in self.part.value:
            self.note.value = ""
            return
        groups = kv_groups(heads, self.kv_heads)
        group = groups[self.head.value]
        sharing = [h for h, g in enumerate(groups) if g == group]
        self.note.value = (
            f"<small>grouped-query attention: head {self.head.value} reads key/value head {group}, "
            f"shared by query heads {', '.join(map(str, sharing))}</small>"
        )

    def _draw_weights(self) -> None:
        if self.token.value is None:
            return
        _, rows, cols = self.parts[self.part.value]
        weights = self._weights()
        i = self.token.value
        looks = weights_html(cols, weights[i].numpy(), f"where {rows[i]!r} (query {i}) looks", None)
        looked = ""
        if rows is cols:
            looked = weights_html(rows, weights[:, i].numpy(), f"what looks at {cols[i]!r} (key {i})", i)
        self.weights.value = looks + looked


def masks(n: int = 16, window: int = 4) -> widgets.VBox:
    """The causal, padding and sliding-window masks, with a slider for the window size."""
    slider = widgets.IntSlider(value=window, min=1, max=n, description="window w")
    out = widgets.Output()

    def draw(_=None) -> None:
        show_figure(out, mask_figure(n, slider.value, (n, max(1, n * 2 // 3))))

    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([slider, out])
