"""Token views: how a tokenizer split a text.

Example:
    >>> from llminspect.tokens import Tokens
    >>> toks = Tokens("a<b", [7, 8], ["a", "<b"], [(0, 1), (1, 3)], [False, False])
    >>> "&lt;b" in token_table(toks).body
    True
"""

from __future__ import annotations

from ..tokens import Tokens
from .html import HTMLView, escape

_STYLE = (
    "<style>.li-tokens{border-collapse:collapse;font:13px sans-serif}"
    ".li-tokens td,.li-tokens th{border:1px solid #ccc;padding:2px 8px;text-align:left !important}"
    ".li-tokens th{background:#f3f3f3}.li-tokens .special{color:#a33}"
    ".li-tokens code{background:#eef;padding:0 3px;white-space:pre}</style>"
)


def token_table(tokens: Tokens) -> HTMLView:
    """A table with one row per token: position, id, vocabulary entry, characters covered, special or not."""
    rows = []
    for row in tokens.rows():
        css = " class='special'" if row["special"] else ""
        rows.append(
            f"<tr{css}><td>{row['position']}</td><td>{row['id']}</td><td><code>{escape(row['token'])}</code></td>"
            f"<td><code>{escape(row['characters'])}</code></td><td>{'special' if row['special'] else ''}</td></tr>"
        )
    header = "<tr><th>#</th><th>id</th><th>token</th><th>characters</th><th></th></tr>"
    caption = f"<caption>{len(tokens)} tokens for <code>{escape(tokens.text)}</code></caption>"
    return HTMLView(f"{_STYLE}<table class='li-tokens'>{caption}{header}{''.join(rows)}</table>", "tokens")
