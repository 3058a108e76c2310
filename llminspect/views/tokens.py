"""Token views: how a tokenizer split a text, as chips, tables, side by side, or live as you type.

Every string from a tokenizer is escaped before it reaches HTML.

Example:
    >>> from llminspect.analysis.tokens import Tokens
    >>> toks = Tokens("a<b", [7, 8], ["a", "<b"], [(0, 1), (1, 3)], [False, False], [b"a", b"<b"])
    >>> "&lt;b" in tokens(toks).body
    True
"""

from __future__ import annotations

from collections.abc import Mapping

from llminspect.analysis.next_token import Healing
from llminspect.analysis.tokens import SPACE_SIGN, Tokens
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView, escape

# Alternating pastel backgrounds: neighbours always differ, so token boundaries show.
PALETTE = ["#ffd8a8", "#b2f2bb", "#a5d8ff", "#eebefa", "#ffec99", "#99e9f2"]

STYLE = """<style>
.li-chips{font:14px/1.2 ui-monospace,Menlo,Consolas,monospace;display:flex;flex-wrap:wrap;gap:3px;margin:4px 0}
.li-chip{display:inline-flex;flex-direction:column;align-items:center;border-radius:4px;padding:2px 4px;
 border:1px solid rgba(0,0,0,.12);white-space:pre}
.li-chip small{font-size:10px;color:#555;margin-top:1px}
.li-chip.special{background:#fff !important;border:1px dashed #c92a2a;color:#c92a2a}
.li-chip.partial{border:1px solid #e8590c;font-style:italic}
.li-count{font:12px sans-serif;color:#333;margin:6px 0 0}
.li-tokens{border-collapse:collapse;font:13px sans-serif}
.li-tokens td,.li-tokens th{border:1px solid #ccc;padding:2px 8px;text-align:left !important}
.li-tokens th{background:#f3f3f3}.li-tokens .special{color:#a33}
.li-tokens code{background:#eef;padding:0 3px;white-space:pre}
.li-bar{display:inline-block;height:10px;background:#4c6ef5;vertical-align:middle}
</style>"""


def _chip(tokens: Tokens, index: int, show_ids: bool) -> str:
    label = tokens.labels[index]
    raw = tokens.token_bytes[index] if tokens.token_bytes else b""
    start, end = tokens.offsets[index]
    classes = "li-chip" + (" special" if tokens.special[index] else "") + (" partial" if tokens.partial[index] else "")
    hover = [f"id {tokens.ids[index]}" if tokens.ids[index] >= 0 else "no id (a plain split)"]
    hover.append(f"vocabulary entry {tokens.strings[index]!r}")
    hover.append(f"characters {start}-{end}: {tokens.text[start:end]!r}" if end > start else "covers no characters")
    if raw:
        hover.append("bytes " + " ".join(f"{b:02X}" for b in raw))
    if tokens.partial[index]:
        hover.append("part of a character: only valid UTF-8 together with its neighbours")
    if tokens.special[index]:
        hover.append("special token added by the tokenizer")
    ident = f"<small>{tokens.ids[index]}</small>" if show_ids and tokens.ids[index] >= 0 else ""
    colour = PALETTE[index % len(PALETTE)]
    return (
        f"<span class='{classes}' style='background:{colour}' title='{escape(chr(10).join(hover))}'>"
        f"{escape(label)}{ident}</span>"
    )


def chips_html(tokens: Tokens, show_ids: bool = True) -> str:
    """The chips of one tokenization as an HTML fragment (no styles)."""
    chips = "".join(_chip(tokens, i, show_ids) for i in range(len(tokens)))
    return f"<div class='li-chips'>{chips}</div>"


@takes(Tokens, "m.tokenize(text)")
def tokens(tokens: Tokens, show_ids: bool = True) -> HTMLView:
    """Each token as a coloured chip: its text (spaces shown as ␣, partial UTF-8 as hex bytes), its id
    below, and on hover the vocabulary entry, the characters it covers and its bytes."""
    partial = sum(tokens.partial)
    note = f", {partial} of them part of a character (hex bytes)" if partial else ""
    count = f"<p class='li-count'>{len(tokens)} tokens{note}. {SPACE_SIGN} marks a space.</p>"
    return HTMLView(STYLE + count + chips_html(tokens, show_ids), "tokens")


@takes(Tokens, "{'name': m.tokenize(text), ...}", "mapping")
def compare(tokenizations: Mapping[str, Tokens], show_ids: bool = False) -> HTMLView:
    """The same text through several tokenizers, one row each, with token counts."""
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:10px;vertical-align:top'>{escape(name)}<br>"
        f"<span class='li-count'>{len(toks)} tokens</span></th><td>{chips_html(toks, show_ids)}</td></tr>"
        for name, toks in tokenizations.items()
    )
    return HTMLView(f"{STYLE}<table>{rows}</table>", "tokenizers compared")


@takes(Tokens, "m.tokenize(text)")
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
    return HTMLView(f"{STYLE}<table class='li-tokens'>{caption}{header}{''.join(rows)}</table>", "tokens")


def _visible(text: str) -> str:
    return text.replace(" ", SPACE_SIGN).replace("\n", "↵")


def next_tokens_html(title: str, candidates) -> str:
    """A small table of candidate next tokens with probability bars (``candidates``: a NextTokens)."""
    rows = "".join(
        f"<tr><td><code>{escape(_visible(token))}</code></td><td>{p:.1%}</td>"
        f"<td><span class='li-bar' style='width:{max(1, round(150 * p))}px'></span></td></tr>"
        for token, p in zip(candidates.tokens, candidates.probabilities, strict=True)
    )
    return (
        f"<table class='li-tokens'><caption>{escape(title)}</caption>"
        f"<tr><th>next token</th><th>probability</th><th></th></tr>{rows}</table>"
    )


@takes(Healing, "m.healing(prompt)")
def healing(healed) -> HTMLView:
    """Next tokens as the prompt was written, beside those after token healing (a Healing)."""
    before = next_tokens_html(f"after {healed.prompt!r}", healed.before)
    after = next_tokens_html(
        f"healed: after {healed.after.prompt!r}, tokens starting with {healed.removed!r} "
        f"(they held {healed.mass:.1%} of the probability)",
        healed.after,
    )
    body = f"{STYLE}<div style='display:flex;gap:24px;align-items:flex-start'>{before}{after}</div>"
    return HTMLView(body, "token healing")
