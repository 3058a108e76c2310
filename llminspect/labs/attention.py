"""The attention explorer: every layer and head of a trace, readable at 1,024 tokens, quick in the browser.

Three panes, drawn on canvases in the browser (``explorer.js``, an anywidget: no library, no
network): a layer x head summary (entropy, distance, weight on the first / previous token /
itself; click a head), the whole map of the chosen head pooled to at most 256 x 256 (each pixel
the largest weight of its block; drag the box), and the box cell by cell with token labels (click
a row: where that token looks, as text). Colours on a labelled √ scale by default, so weights
beyond the attention sink show; linear and per-row scales are one click away. An average over
heads is offered only as a labelled choice.

What travels: one layer of every head at once as deflated float16 (a head switch then costs no
message at all), the box and a row on demand. A 1,024-token decoder trace paints with ~1 MB.

Example:
    >>> import llminspect as li
    >>> explorer = attention(li.load("toy-seq2seq").trace("happy bird"), part="cross-attention")
    >>> explorer.part, explorer.size, explorer.heads
    ('cross-attention', [4, 3], 4)
"""

from __future__ import annotations

import base64
import json
import math
import os
import zlib
from pathlib import Path

import anywidget
import ipywidgets as widgets
import torch
import traitlets

from llminspect.analysis.arguments import choice, index, whole_number
from llminspect.analysis.attention import head_statistics
from llminspect.analysis.trace import Trace
from llminspect.errors import InputError
from llminspect.labs.display import show_figure
from llminspect.views.attention import attention_parts
from llminspect.views.attention import masks as mask_figure
from llminspect.views.checks import takes

MEAN = -1  # head value of the (labelled) average over heads
OVERVIEW = 256  # the whole map is pooled to at most this many rows and columns
HANDOUT_LIMIT = 256  # a saved page carries every layer at full resolution up to this many tokens


def half_bytes(values: torch.Tensor, deflate: bool = True) -> bytes:
    """float16 little-endian bytes of ``values`` (deflated by default): what the browser decodes."""
    raw = values.detach().to(torch.float16).contiguous().numpy().tobytes()
    return zlib.compress(raw, 1) if deflate else raw


def from_half_bytes(data: bytes, shape, deflated: bool = True) -> torch.Tensor:
    """The inverse of ``half_bytes``, as float32 (tests read what was sent)."""
    raw = zlib.decompress(data) if deflated else data
    return torch.frombuffer(bytearray(raw), dtype=torch.float16).float().reshape(shape)


@takes(Trace, "m.trace(text)")
def attention(trace, part: str | None = None, layer: int = 0, head: int | str = 0) -> AttentionExplorer:
    """Explore a trace's attention: summaries of every head, one head's map, one token's row."""
    return AttentionExplorer(trace, part, layer, head)


class AttentionExplorer(anywidget.AnyWidget):
    """The explorer widget; its traits are what the browser shows and what a test reads."""

    _esm = Path(__file__).with_name("explorer.js")
    _css = Path(__file__).with_name("explorer.css")
    parts = traitlets.List(traitlets.Unicode()).tag(sync=True)
    part = traitlets.Unicode().tag(sync=True)
    layers = traitlets.Int(1).tag(sync=True)
    heads = traitlets.Int(1).tag(sync=True)
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)  # MEAN (-1): the average over heads
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)  # queries (rows)
    key_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)  # keys (columns)
    size = traitlets.List(traitlets.Int(), [1, 1]).tag(sync=True)  # [queries, keys]
    block = traitlets.Int(1).tag(sync=True)  # cells per overview pixel, each way
    pooled = traitlets.List(traitlets.Int(), [1, 1]).tag(sync=True)
    maps = traitlets.Bytes(b"").tag(sync=True)  # deflated float16 [heads + 1, pooled rows, pooled cols]
    summary = traitlets.Dict().tag(sync=True)  # statistic -> [layers][heads]
    statistic = traitlets.Unicode("entropy").tag(sync=True)
    scale = traitlets.Unicode("power").tag(sync=True)
    span = traitlets.Int(64).tag(sync=True)  # tokens per side of the box
    window = traitlets.List(traitlets.Int(), [0, 0]).tag(sync=True)  # the box's first query and key
    detail_shape = traitlets.List(traitlets.Int(), [1, 1]).tag(sync=True)
    detail = traitlets.Bytes(b"").tag(sync=True)  # deflated float16 of the box, full resolution
    token = traitlets.Int(0).tag(sync=True)  # the query whose row is shown as text
    row = traitlets.Bytes(b"").tag(sync=True)  # float16 [keys]
    kv_groups = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(self, trace, part: str | None = None, layer: int = 0, head: int | str = 0) -> None:
        super().__init__()
        self._parts = attention_parts(trace)
        self._statistics: dict[str, dict] = {}
        self._kv = trace.num_key_value_heads
        part = next(iter(self._parts)) if part is None else choice(part, "part", self._parts)
        with self.hold_trait_notifications():
            self.parts = list(self._parts)
            self._choose_part(part)
            self.layer = self._checked(layer, self.layers, "layer")
            self.head = MEAN if head == "mean" else self._checked(head, self.heads, "head")
        self._send_layer()

    @staticmethod
    def _checked(value: int, count: int, what: str) -> int:
        value = index(value, what, ("mean",) if what == "head" else ())
        if not 0 <= value < count:
            extra = " (or 'mean')" if what == "head" else ""
            raise InputError(f"{what}={value!r}: choose 0 to {count - 1}{extra}.")
        return value

    def _choose_part(self, part: str) -> None:
        maps, rows, cols = self._parts[part]
        self.part, self.labels, self.key_labels = part, list(rows), list(cols)
        self.layers, self.heads = maps.shape[0], maps.shape[1]
        self.size = [maps.shape[2], maps.shape[3]]
        self.block = max(1, math.ceil(max(self.size) / OVERVIEW))
        self.pooled = [math.ceil(n / self.block) for n in self.size]
        if part not in self._statistics:
            self._statistics[part] = head_statistics_lists(maps)
        self.summary = self._statistics[part]
        self.statistic = self.statistic if self.statistic in self.summary else "entropy"
        grouped = self._kv and part != "cross-attention" and self._kv < self.heads
        self.kv_groups = [h // (self.heads // self._kv) for h in range(self.heads)] if grouped else []
        causal = "self" in part and part != "encoder self-attention"
        self.token = self.size[0] - 1 if causal else 0
        self.window = [max(0, self.size[0] - self.span) if causal else 0, 0]

    def layer_maps(self) -> torch.Tensor:
        """The chosen layer's maps at full resolution, every head then their mean: [heads + 1, queries, keys]."""
        maps = self._parts[self.part][0][self.layer]
        return torch.cat([maps, maps.mean(0, keepdim=True)])

    def _send_layer(self) -> None:
        full = self.layer_maps()
        if self.block > 1:
            full = torch.nn.functional.max_pool2d(full[None], self.block, self.block, ceil_mode=True)[0]
        with self.hold_sync():
            self.maps = half_bytes(full)
            self._send_detail()
            self._send_row()

    def _head_map(self) -> torch.Tensor:
        return self.layer_maps()[self.head]

    def _send_detail(self) -> None:
        r0, c0 = self.window
        box = self._head_map()[r0 : r0 + self.span, c0 : c0 + self.span]
        self.detail_shape, self.detail = list(box.shape), half_bytes(box)

    def _send_row(self) -> None:
        self.row = half_bytes(self._head_map()[self.token], deflate=False)

    @traitlets.observe("part")
    def _on_part(self, change) -> None:
        if change["old"] and change["new"] != change["old"] and change["new"] in self._parts:
            with self.hold_trait_notifications():
                self._choose_part(change["new"])
                self.layer = min(self.layer, self.layers - 1)
                self.head = min(self.head, self.heads - 1)
            self._send_layer()

    @traitlets.observe("layer")
    def _on_layer(self, change) -> None:
        if self.maps:
            self._send_layer()

    @traitlets.observe("head")
    def _on_head(self, change) -> None:
        if self.maps:
            with self.hold_sync():
                self._send_detail()
                self._send_row()

    @traitlets.observe("window", "span")
    def _on_window(self, change) -> None:
        if self.maps:
            rows, cols = self.size
            self.span = max(1, self.span)
            self.window = [max(0, min(self.window[0], rows - self.span)), max(0, min(self.window[1], cols - self.span))]
            self._send_detail()

    @traitlets.observe("token")
    def _on_token(self, change) -> None:
        if self.maps:
            self._send_row()

    # --- a handout: the same drawing, offline, with every layer in the page ----------------------

    def to_html(self) -> str:
        """A self-contained page: the explorer working in any browser with no kernel and no network.

        It carries every layer at full resolution, so it is for short texts (at most 256 tokens).
        """
        if max(max(maps.shape[2:]) for maps, _, _ in self._parts.values()) > HANDOUT_LIMIT:
            raise InputError(
                f"A handout carries every layer at full resolution: keep it to {HANDOUT_LIMIT} tokens or fewer "
                "(save a single head with views.save(views.attention(trace, layer=..., head=...), path))."
            )
        data = {"traits": {name: getattr(self, name) for name in self._HANDOUT_TRAITS}, "full": {}}
        for part, (maps, _, _) in self._parts.items():
            layers = [torch.cat([layer, layer.mean(0, keepdim=True)]) for layer in maps]
            data["full"][part] = base64.b64encode(half_bytes(torch.stack(layers), deflate=False)).decode()
        data["parts"] = {part: {"labels": list(rows), "key_labels": list(cols), "shape": list(maps.shape),
                                "summary": self._statistics.get(part) or head_statistics_lists(maps)}
                         for part, (maps, rows, cols) in self._parts.items()}  # fmt: skip
        here = Path(__file__).parent
        script = (here / "explorer.js").read_text() + (here / "handout.js").read_text()
        payload = json.dumps(data).replace("</", "<\\/")
        css = (here / "explorer.css").read_text()
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>attention explorer</title><style>{css}"
                f"</style></head><body><div id='explorer'></div><script type='module'>{script}\n"
                f"startHandout(document.getElementById('explorer'), {payload});</script></body></html>")  # fmt: skip

    _HANDOUT_TRAITS = ("parts", "part", "layers", "heads", "layer", "head", "labels", "key_labels", "size", "block",
                       "pooled", "summary", "statistic", "scale", "span", "window", "detail_shape", "token",
                       "kv_groups")  # fmt: skip

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if os.environ.get("LLMINSPECT_EXPORT") and bundle:  # `llminspect export`: the page, interactive offline
            data, metadata = bundle
            data["text/html"] = self.to_html()
        return bundle


def head_statistics_lists(maps) -> dict[str, list[list[float]]]:
    """``head_statistics`` as nested lists of rounded floats (JSON for the browser)."""
    return {name: [[round(float(v), 4) for v in row] for row in values.tolist()]
            for name, values in head_statistics(maps).items()}  # fmt: skip


def masks(n: int = 16, window: int = 4) -> widgets.VBox:
    """The causal, padding and sliding-window masks, with a slider for the window size."""
    n, window = whole_number(n, "n"), whole_number(window, "window")
    slider = widgets.IntSlider(value=window, min=1, max=n, description="window w")
    out = widgets.Output()

    def draw(_=None) -> None:
        show_figure(out, mask_figure(n, slider.value, (n, max(1, n * 2 // 3))))

    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([slider, out])
