"""The predictions of lessons 09 (circuits) and 10 (probes, steering, superposition), computed from the models.

Each lesson is a list of plain entries (the fields of ``exercises.Exercise``) built around ``model``, the
function that hands out an embedded model loaded once per kernel; ``exercises`` turns them into its
``Exercise`` objects. Answers are computed on the lessons' own inputs when first checked.

Example:
    >>> [entry["question"][:32] for entry in lesson_10(lambda name: None)][-1]
    'At sparsity 0.97 (each feature o'
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from llminspect.analysis import probes, steering
from llminspect.analysis.superposition import toy_superposition

PROMPT, ANSWER, OTHER = "The capital of France is", " Paris", " Rome"
SPARSITIES = [0.0, 0.7, 0.9, 0.97]


def lesson_09(model: Callable) -> list[dict]:
    """Predictions of lesson 09: the repeat's loss, where the previous-token head sits, the heads switched off,
    the layer that writes Paris."""

    @functools.lru_cache(maxsize=1)
    def found():
        return model("decoder").induction(length=40, seed=0)

    def loss_band() -> str:
        ratio = found().loss("second") / found().loss("first")
        return "a" if ratio > 0.8 else "b" if ratio > 0.35 else "c"

    def previous_head_earlier() -> bool:
        return found().top_heads(1, "previous_token")[0][0] < found().top_heads(1)[0][0]

    def mean_ablated_band() -> str:
        ablation = model("decoder").induction_ablation(found(), n=5, controls=0)
        loss = ablation.second_copy(ablation.sets[0].label, how="mean")
        return "a" if loss < 4 else "b" if loss <= 8 else "c"

    def strongest_attention() -> int:
        shares = model("decoder").logit_attribution(PROMPT, ANSWER, OTHER).attention
        return int(shares.argmax())

    return [
        dict(question="On the first copy of 40 random tokens the mean loss is about 14 nats. On the second copy?",
             answer=loss_band, choices=["a) about the same (above 80 % of it)", "b) between 35 % and 80 % of it",
                                        "c) below 35 % of it"],
             why="the second copy is predictable from the first: the model looks back, finds the same token and "
                 "copies what came after it — in-context learning with no training.",
             hint="what could the model use on the second copy that it did not have on the first?"),
        dict(question="The strongest induction head is in layer 18. Is the strongest previous-token head in an "
                      "earlier layer?", answer=previous_head_earlier,
             why="yes, layer 16 (head 16.0): an induction head's key must already know which token came before "
                 "it, and only an earlier head can have written that.",
             hint="which of the two heads needs the other's output?"),
        dict(question="Set the top 5 induction heads (5 of 270) to their mean outputs. The second copy's mean loss "
                      "(about 3 with every head) becomes:", answer=mean_ablated_band,
             choices=["a) below 4", "b) 4 to 8", "c) above 8"],
             why="about 9.6: five heads carry most of the copying; five random heads move it by less than one nat.",
             hint="the heat map shows how few heads have a high induction score."),
        dict(question="Lesson 04's patching found France's information reaching the last token at block 23. Which "
                      "layer's attention writes most directly toward ' Paris' over ' Rome'?",
             answer=strongest_attention, tolerance=0,
             why="layer 23 (head 23.4 most of it): the block where patching saw the answer arrive is the one whose "
                 "attention writes it straight into the logits.", hint="read the tallest blue bar."),
    ]  # fmt: skip


def lesson_10(model: Callable) -> list[dict]:
    """Predictions of lesson 10: the probe at the embeddings, the control task, steering against its control,
    the toy model's features at two sparsities."""

    @functools.lru_cache(maxsize=1)
    def found():
        return model("decoder").probe(probes.number_sentences(), seed=0)

    @functools.lru_cache(maxsize=1)
    def toy():
        return toy_superposition(sparsities=SPARSITIES, seed=0)

    def steering_wins() -> str:
        sweep = model("decoder").steering(steering.PROMPTS, " Love", " Hate", (steering.POSITIVE, steering.NEGATIVE),
                                          layers=[12], coefficients=[10], controls=2)  # fmt: skip
        mine, randoms = float(sweep.shift[0, 0]), sweep.random_shift[0, 0].tolist()
        return "a" if all(mine > r for r in randoms) else "b" if all(mine < r for r in randoms) else "c"

    return [
        dict(question="Before block 0 the last position holds only the last word's vector ('tree', 'doors', ...). "
                      "Can a probe there tell a singular subject from a plural one above 75 % of the time?",
             answer=lambda: bool(found().accuracy[0] > 0.75),
             why="no: the last word says nothing about the subject (it is singular or plural on its own), so the "
                 "probe is at chance; one block later the number has arrived.",
             hint="which word decides the label, and is it at the last position?"),
        dict(question="The control task gives each of the 24 subject words a random label of its own. Will the same "
                      "probe learn it above 85 % from the last layer's vectors?",
             answer=lambda: bool(found().control[-1] > 0.85),
             why="yes: the last layers hold which subject it was well enough to memorise 24 arbitrary labels, so a "
                 "probe's high accuracy there says little by itself.",
             hint="can a logistic regression on 576 numbers memorise 24 words' labels?"),
        dict(question="Add Love − Hate ×10 to block 12's input. Which raises the positive-minus-negative metric more "
                      "over the 16 prompts?", answer=steering_wins,
             choices=["a) Love − Hate", "b) a random vector of the same norm", "c) neither wins every time"],
             why="Love − Hate raises it on most prompts; random vectors of its norm lower it: the direction matters, "
                 "not only the size of the push.", hint="compare the coloured line with the grey crosses."),
        dict(question="With dense features (sparsity 0: every feature on in every input), how many of the 5 features "
                      "does the 2-dimensional toy model represent?", answer=lambda: int(toy().represented()[0]),
             why="2: with everything on at once, any overlap costs in every input; it keeps the two most important "
                 "features, orthogonal, and drops the rest.", hint="how many orthogonal directions fit in 2-D?"),
        dict(question="At sparsity 0.97 (each feature off 97 % of the time), how many does it represent?",
             answer=lambda: int(toy().represented()[-1]),
             why="all 5, in a pentagon: two features are rarely on together, so sharing directions costs little.",
             hint="when two features are almost never on at once, does their overlap cost much?"),
    ]  # fmt: skip
