"""How exercises look: the questions of a lesson, and the feedback of check / reveal.

A prediction is a question to answer; a code exercise is a function to write (its signature
shown). Feedback keeps a learner's traceback and a revealed solution as code, escaped.

Example:
    >>> from llminspect.teaching.exercises import Feedback
    >>> "color" in feedback(Feedback("right", "✔ <b>"))
    True
"""

from __future__ import annotations

from llminspect.views.html import escape

COLOURS = {"right": "#2b8a3e", "not yet": "#c92a2a", "mistake": "#c92a2a", "raised": "#862e9c",
           "no answer": "#495057", "not written": "#495057", "answer": "#1c3d5a"}  # fmt: skip
CODE = "font:13px monospace;background:#f1f3f5;padding:6px 8px;border-radius:4px;white-space:pre-wrap;margin:4px 0"


def feedback(item) -> str:
    weight = "bold" if item.verdict == "answer" else "normal"
    code = getattr(item, "code", "")
    solution = f"<pre style='{CODE}'>{escape(code)}</pre>" if code else ""
    return (
        f"<div style='font:14px sans-serif;font-weight:{weight};color:{COLOURS.get(item.verdict, '#000')};"
        f"white-space:pre-wrap'>{escape(item.text)}</div>{solution}"
    )


def questions(quiz) -> str:
    rows = []
    for item in quiz.items:
        signature = getattr(item, "signature", "")
        task = f"<b>write</b> <code>{escape(signature)}</code>: " if signature else ""
        choices = "".join(f"<br>&nbsp;&nbsp;{escape(choice)}" for choice in getattr(item, "choices", []))
        rows.append(f"<li>{task}{escape(item.question)}{choices}</li>")
    return (
        "<div style='font:14px sans-serif'><b>Predict, then check</b> with <code>quiz.check(n, your_answer)</code> "
        "(a function you wrote for the <b>write</b> ones); <code>quiz.reveal(n)</code> shows the answer:"
        f"<ol>{''.join(rows)}</ol></div>"
    )
