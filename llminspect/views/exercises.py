"""How exercises look: the questions of a lesson, and the feedback of check / reveal.

Example:
    >>> from llminspect.teaching.exercises import Feedback
    >>> "color" in feedback(Feedback("right", "✔ <b>"))
    True
"""

from __future__ import annotations

from llminspect.views.html import escape

COLOURS = {"right": "#2b8a3e", "not yet": "#c92a2a", "no answer": "#495057", "answer": "#1c3d5a"}


def feedback(item) -> str:
    weight = "bold" if item.verdict == "answer" else "normal"
    return (
        f"<p style='font:14px sans-serif;font-weight:{weight};color:{COLOURS.get(item.verdict, '#000')}'>"
        f"{escape(item.text)}</p>"
    )


def questions(quiz) -> str:
    rows = []
    for item in quiz.items:
        choices = "".join(f"<br>&nbsp;&nbsp;{escape(choice)}" for choice in item.choices)
        rows.append(f"<li>{escape(item.question)}{choices}</li>")
    return (
        "<div style='font:14px sans-serif'><b>Predict, then check</b> with <code>quiz.check(n, your_answer)</code>; "
        f"<code>quiz.reveal(n)</code> shows the answer:<ol>{''.join(rows)}</ol></div>"
    )
