"""The live tokenizer box: type, and see each model's tokens as you type.

Example:
    >>> import llminspect as li
    >>> box = tokenizers({"toy": li.load("toy-seq2seq")}, "happy bird")
    >>> "happy" in box.children[1].value
    True
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets

from llminspect.labs.display import debounced
from llminspect.views.tokens import compare


def tokenizers(models, text: str = "Type here…") -> widgets.VBox:
    """A text box whose token chips and counts update as you type (debounced).

    ``models`` is one loaded model, or a dict of them by name (their tokenizers side by side).
    """
    named = models if isinstance(models, Mapping) else {"tokens": models}
    functions = {name: m.tokenize for name, m in named.items()}
    box = widgets.Textarea(value=text, continuous_update=True, layout=widgets.Layout(width="100%", height="60px"))
    output = widgets.HTML()

    def render(value: str) -> None:
        if not value:
            output.value = "<p class='li-count'>Type some text.</p>"
            return
        output.value = compare({name: tokenize(value) for name, tokenize in functions.items()}, show_ids=True).body

    update = debounced(0.15, render)
    box.observe(lambda change: update(change["new"]), names="value")
    render(text)
    return widgets.VBox([box, output])
