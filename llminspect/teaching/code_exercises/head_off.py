"""Lesson 03: an experiment of the learner's own — one head switched off through ``m.run``, its effect measured.

The learner edits the site ``layer.L.attention.heads`` (each head's output before the output
projection joins them: [batch, tokens, heads, head_dim]) and returns the change of log p(answer).
The referee is ``m.ablation`` with the same head zeroed, on the lesson's receiver prompt and another
prompt of the kind.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> round(effect_of_head(m, "The capital of France is", " Paris", 0, 0), 2) < 0
    True
"""

from __future__ import annotations

import math

from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

PROMPTS = [("When Mary and John went to the store, John gave a drink to", " Mary", (1, 5)),
           ("When Anna and Tom went to the park, Tom gave a ball to", " Anna", (0, 0))]  # fmt: skip


def effect_of_head(m, prompt, answer, layer, head):
    """The change of log p(answer) next after `prompt` when head `head` of layer `layer` writes zeros."""
    answer_id = m.tokenize(answer).ids[0]

    def off(heads):  # [batch, tokens, heads, head_dim]: this head's output at every position becomes 0
        heads[:, :, head] = 0
        return heads

    clean = m.run(prompt).logits[0, -1].log_softmax(-1)[answer_id]
    edited = m.run(prompt, edit={f"layer.{layer}.attention.heads": off}).logits[0, -1].log_softmax(-1)[answer_id]
    return float(edited - clean)


def by_ablation(m, prompt: str, answer: str, layer: int, head: int) -> float:
    """The referee: ``m.ablation``'s p(answer) with all heads and with this one zeroed, as a log ratio."""
    found = m.ablation(prompt, answer, heads=[(layer, head)])
    return math.log(found.p_after) - math.log(found.p_before)


def cases() -> list[Case]:
    m = course_models.embedded("decoder")
    return [Case(f"head {layer}.{head} on {prompt!r}", (m, prompt, answer, layer, head),
                 by_ablation(m, prompt, answer, layer, head))
            for prompt, answer, (layer, head) in PROMPTS]  # fmt: skip


def _measured(m, prompt, answer, layer, edit, position=-1, log=True):
    answer_id = m.tokenize(answer).ids[0]
    read = (lambda logits: logits.log_softmax(-1)) if log else (lambda logits: logits.softmax(-1))
    clean = read(m.run(prompt).logits[0, position])[answer_id]
    edited = read(m.run(prompt, edit={f"layer.{layer}.attention.heads": edit}).logits[0, position])[answer_id]
    return float(edited - clean)


def _zeroing(head, where):
    def off(heads):
        heads[where(head)] = 0
        return heads

    return off


def _tokens_axis(m, prompt, answer, layer, head):
    return _measured(m, prompt, answer, layer, _zeroing(head, lambda h: (slice(None), h)))


def _whole_layer(m, prompt, answer, layer, head):
    return _measured(m, prompt, answer, layer, _zeroing(head, lambda h: (slice(None),)))


def _no_return(m, prompt, answer, layer, head):
    def off(heads):
        heads[:, :, head] = 0

    return _measured(m, prompt, answer, layer, off)


def _first_position(m, prompt, answer, layer, head):
    return _measured(m, prompt, answer, layer, _zeroing(head, lambda h: (slice(None), slice(None), h)), position=0)


def _probabilities(m, prompt, answer, layer, head):
    return _measured(m, prompt, answer, layer, _zeroing(head, lambda h: (slice(None), slice(None), h)), log=False)


def _sign(m, prompt, answer, layer, head):
    return -effect_of_head(m, prompt, answer, layer, head)


EXERCISE = CodeExercise(
    "Run your own experiment with m.run: switch one head off (its output at every position set to 0) and "
    "return the change of log p(answer), edited minus clean. It is checked against m.ablation.",
    "effect_of_head(m, prompt, answer, layer, head) -> change of log p", effect_of_head, cases,
    [Mistake("zeroing the tokens axis", "the site is [batch, tokens, heads, head_dim]: heads[:, head] picks a "
             "token position, not a head.", _tokens_axis),
     Mistake("switching the whole layer off", "index the head too: only one of the layer's heads goes quiet.",
             _whole_layer),
     Mistake("an edit that returns nothing", "m.run uses what your edit function returns: end it with "
             "return heads.", _no_return),
     Mistake("reading the first position", "the next token after the prompt is predicted at the last position.",
             _first_position),
     Mistake("comparing probabilities instead of log-probabilities", "take log_softmax of the logits, then "
             "subtract.", _probabilities),
     Mistake("the sign flipped", "edited minus clean: a head that helps gives a negative change.", _sign)],
    "the edit receives each head's output before the output projection, [batch, tokens, heads, head_dim]; zeroing "
    "[:, :, head] silences that head everywhere; two runs (clean and edited) read log p(answer) at the last "
    "position. m.ablation and m.head_effects do exactly this, batched.",
    tolerance=1e-3, hint="print m.sites()['layer.29.attention.heads'] and the shape your edit function receives.",
)  # fmt: skip
