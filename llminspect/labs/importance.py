"""The importance lab: type a prompt, pick one of its likeliest next tokens and a method, see why.

Example:
    >>> import llminspect as li
    >>> lab = importance(li.load("decoder"), "The capital of France is", k=3)
    >>> len(lab.children)
    4
"""

from __future__ import annotations

import ipywidgets as widgets

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.importance import METHODS
from llminspect.inspector import Inspector
from llminspect.labs.display import debounced, show_figure
from llminspect.views.checks import takes
from llminspect.views.html import HTMLView
from llminspect.views.importance import importance as importance_view


@takes(Inspector, "li.load('decoder')")
def importance(m, prompt: str = "The capital of France is", k: int = 8) -> widgets.VBox:
    """Type a prompt, pick a target among the top-k next tokens, pick a method, and explain (a decoder)."""
    m.require_family("The importance lab", "decoder")
    k = whole_number(k, "k")
    text = widgets.Text(value=prompt, description="prompt", layout=widgets.Layout(width="60%"))
    target = widgets.Dropdown(description="target")
    method = widgets.Dropdown(options=list(METHODS), value="integrated_gradients", description="method")
    run = widgets.Button(description="explain", button_style="primary")
    result = widgets.HTML()
    chart = widgets.Output()

    def refresh(value: str) -> None:
        if not value.strip():
            target.options = []
            return
        top = m.next_tokens(value, k)
        target.options = [(f"{t!r} {p:.1%}", t) for t, p in zip(top.tokens, top.probabilities, strict=True)]
        target.value = top.tokens[0]

    def explain_now(_=None) -> None:
        if not target.value:
            return
        view = importance_view(m.importance(text.value, target.value, method.value))
        if isinstance(view, HTMLView):
            result.value, chart.outputs = view.body, ()
        else:
            result.value = ""
            show_figure(chart, view)

    update = debounced(0.3, refresh)
    text.observe(lambda change: update(change["new"]), names="value")
    run.on_click(explain_now)
    refresh(prompt)
    explain_now()
    return widgets.VBox([text, widgets.HBox([target, method, run]), result, chart])
