"""One colour per kind of model part, shared by every view (walk tables, outlines, anatomy bars).

Kinds are ``llminspect.models.structure.KINDS`` plus the walk's own "residual" and "block".
``KIND_COLOURS`` are full colours for bars; ``background`` gives the same hue, light, behind text.

Example:
    >>> KIND_COLOURS["attention"], background("attention")
    ('#ffa94d', '#ffa94d33')
"""

from __future__ import annotations

KIND_COLOURS = {
    "embedding": "#74c0fc",
    "positions": "#66d9e8",
    "attention": "#ffa94d",
    "cross-attention": "#f783ac",
    "norm": "#adb5bd",
    "mlp": "#69db7c",
    "experts": "#38d9a9",
    "router": "#e64980",
    "head": "#b197fc",
    "residual": "#ffd43b",
    "block": "#9775fa",
    "other": "#dee2e6",
}


def background(kind: str) -> str:
    """The kind's colour at 20 % opacity (an 8-digit hex colour), for the background of a row or label."""
    return KIND_COLOURS.get(kind, KIND_COLOURS["other"]) + "33"
