"""The whole journey as boxes and arrows, the key/value cache growing, an encoder-decoder's loop as a table.

Example:
    >>> from llminspect.analysis.journey import Stage
    >>> "&lt;b&gt;" in stage_box(Stage("tokenize", "01", "text → ids", (2,), [1.0, 2.0], ["<b>", "x"]))
    True
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llminspect.analysis.journey import Journey, Translation
from llminspect.analysis.kv_cache import CacheRun
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape

STYLE = (
    "<style>.li-trip{display:flex;flex-wrap:wrap;align-items:stretch;gap:4px;font:13px sans-serif}"
    ".li-trip .box{border:1px solid #adb5bd;border-radius:6px;padding:6px 8px;width:205px;background:#f8f9fa}"
    ".li-trip .box b{font-size:14px}.li-trip .arrow{align-self:center;font-size:20px;color:#868e96}"
    ".li-trip .shape{color:#1c7ed6;font-family:monospace}.li-trip .lesson{float:right;color:#868e96;font-size:11px}"
    ".li-trip .what{color:#495057;margin:3px 0}.li-trip code{font-size:11px;white-space:pre-wrap}"
    ".li-trip .loop{width:100%;color:#495057;margin-top:4px}</style>"
)


def _numbers(stage) -> str:
    if stage.labels is None:
        return ", ".join(f"{v:.3f}" for v in stage.numbers) + (" …" if stage.numbers else "")
    if stage.name == "tokenize":
        return " ".join(f"{label}:{int(v)}" for label, v in zip(stage.labels, stage.numbers, strict=False))
    return "\n".join(f"{label} {v:.2f}" for label, v in zip(stage.labels, stage.numbers, strict=False))


def stage_box(stage) -> str:
    """One stage as a box: name, lesson, what happens, shape, a few real numbers (all escaped)."""
    shape = "[" + ", ".join(str(n) for n in stage.shape) + "]"
    return (
        f"<div class='box'><span class='lesson'>lesson {escape(stage.lesson)}</span><b>{escape(stage.name)}</b>"
        f"<div class='what'>{escape(stage.what)}</div><div class='shape'>{escape(shape)}</div>"
        f"<code>{escape(_numbers(stage))}</code></div>"
    )


@takes(Journey, "m.journey(prompt)")
def journey(trip) -> HTMLView:
    """Every stage of one pass, in order, and the token the loop appends."""
    boxes = "<span class='arrow'>→</span>".join(stage_box(stage) for stage in trip.stages)
    loop = (
        f"<div class='loop'>↻ append <b>{escape(trip.chosen)}</b> and run the whole loop again on "
        f"<code>{escape(trip.prompt + trip.chosen)}</code></div>"
    )
    return HTMLView(f"{STYLE}<div class='li-trip'>{boxes}{loop}</div>", "the whole journey")


@takes(CacheRun, "m.kv_cache(prompt, steps)")
def kv_cache(run) -> go.Figure:
    """Left: the cache's size after each step; right: the time to write all tokens, with and without it."""
    titles = ("keys + values kept, all layers (KiB)", "time to write the tokens (s)")
    fig = make_subplots(1, 2, column_widths=[0.65, 0.35], subplot_titles=titles)
    steps = list(range(1, len(run.cache_bytes) + 1))
    fig.add_trace(go.Scatter(x=steps, y=[b / 1024 for b in run.cache_bytes], mode="lines+markers", name="cache",
                             customdata=[str(s) for s in run.key_shapes],
                             hovertemplate="step %{x}: %{y:.0f} KiB; layer 0 keys %{customdata}<extra></extra>"),
                  1, 1)  # fmt: skip
    fig.add_trace(go.Bar(x=["without cache", "with cache"], y=[run.seconds_without, run.seconds_with],
                         marker_color=["#adb5bd", "#364fc7"], name="time"), 1, 2)  # fmt: skip
    fig.update_xaxes(title_text="step (tokens written)", row=1, col=1)
    title = f"same text with and without the cache: {run.same_tokens}; {run.speedup:.1f}× faster with it"
    fig.update_layout(title=title, template="plotly_white", showlegend=False, height=360)
    return fig


@takes(Translation, "m.translation_steps(source)")
def translation(result) -> HTMLView:
    """An encoder-decoder's loop: each step reads a token, looks at the source, writes the next token."""
    rows = "".join(
        f"<tr><td>{i}</td><td><code>{escape(s.reads)}</code></td><td><code>{escape(s.looks_at)}</code> "
        f"({s.weight:.2f})</td><td><code>{escape(s.writes)}</code> ({s.probability:.1%})</td></tr>"
        for i, s in enumerate(result.steps)
    )
    source = " ".join(result.source)
    return HTMLView(
        f"<table class='li-steps' style='font:13px sans-serif'><caption>encoder, once: {escape(source)} → "
        f"{escape(list(result.encoder_shape))}</caption><tr><th>step</th><th>decoder reads</th>"
        f"<th>cross-attention looks at</th><th>writes</th></tr>{rows}</table>",
        "an encoder-decoder's loop",
    )
