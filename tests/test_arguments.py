"""Bad arguments to the public API: an InputError naming the argument and what to pass — never a raw
TypeError, ValueError, IndexError or OSError from deep inside torch or Python.

Four kinds, each checked once in ``analysis.arguments`` and then through every verb, lab and view
it guards: counts (a float, a bool), lists of texts (a bare string, an empty list), indices and
documented words (``head="max"``), and (layer, head) pairs. Saving a view to a missing folder or
onto a folder is the fifth.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import llminspect as li
from llminspect.analysis.arguments import choice, head_pairs, index, list_of_texts, whole_number
from llminspect.errors import EmptyInputError, InputError

# --- the helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [2.5, 3.0, "3", True, False, None, [3], np.float64(2.0), torch.tensor(2.0)])
def test_whole_number_refuses_what_is_not_a_count(value):
    with pytest.raises(InputError, match=r"^steps=.*: pass a whole number \(an int such as 3\)"):
        whole_number(value, "steps")


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), torch.tensor(3)])
def test_whole_number_takes_ints_and_integer_scalars(value):
    assert whole_number(value, "steps") == 3 and type(whole_number(value, "steps")) is int


def test_whole_number_bounds_are_named():
    with pytest.raises(InputError, match="k=0: pass a whole number of at least 1"):
        whole_number(0, "k")
    with pytest.raises(InputError, match="beams=20: pass a whole number of at least 2 and at most 16"):
        whole_number(20, "beams", 2, 16)
    assert whole_number(-1, "layer", minimum=None) == -1


def test_index_and_choice_name_what_is_allowed():
    assert index(np.int64(2), "layer") == 2 and index("mean", "head", ("mean",)) == "mean"
    with pytest.raises(InputError, match=r"^head='max': pass a whole number \(e.g. 0\) or 'mean'"):
        index("max", "head", ("mean",))
    with pytest.raises(InputError, match=r"^layer=1.5: pass a whole number"):
        index(1.5, "layer")
    with pytest.raises(InputError, match="pooling=\\['mean'\\]: choose one of 'mean', 'cls'"):
        choice(["mean"], "pooling", ("mean", "cls"))


def test_list_of_texts_refuses_a_bare_string_an_empty_list_and_non_texts():
    assert list_of_texts(("a", "b"), "texts") == ["a", "b"]
    with pytest.raises(InputError, match=r"texts='The cat': pass a list of texts, e\.g\. texts=\['The cat'\]"):
        list_of_texts("The cat", "texts")
    with pytest.raises(EmptyInputError, match=r"texts=\[\]: the text list is empty"):
        list_of_texts([], "texts")
    with pytest.raises(InputError, match="every item must be a text"):
        list_of_texts(["a", 3], "texts")
    with pytest.raises(InputError, match="pass a list of texts"):
        list_of_texts(5, "texts")


@pytest.mark.parametrize(
    ("heads", "phrase"),
    [
        ([3], "3 is not a \\(layer, head\\) pair"),
        ((3, 1), "one pair written flat; pass a list of pairs: heads=\\[\\(3, 1\\)\\]"),
        ([(1,)], "\\(1,\\) is not a \\(layer, head\\) pair"),
        (["a", "b"], "'a' is not a \\(layer, head\\) pair"),
        ([(0, 1.5)], "must hold two whole numbers"),
        ([(True, 1)], "must hold two whole numbers"),
        (3, "pass heads=\\[\\(layer, head\\), ...\\]"),
        ("0,1", "pass heads=\\[\\(layer, head\\), ...\\]"),
    ],
)
def test_head_pairs_refuses_anything_but_pairs(heads, phrase):
    with pytest.raises(InputError, match=phrase):
        head_pairs(heads)


def test_head_pairs_takes_pairs_lists_and_arrays():
    assert head_pairs([(0, 3), [2, np.int64(1)]]) == [(0, 3), (2, 1)]
    assert head_pairs(np.array([[0, 3]])) == [(0, 3)] and head_pairs([]) == []


# --- 1. counts through the Inspector's verbs -------------------------------------------------------

COUNT_CALLS = {
    "kv_cache steps": lambda m: m.kv_cache("The cat", steps=2.5),
    "next_tokens k": lambda m: m.next_tokens("The cat", k=2.5),
    "healing k": lambda m: m.healing("The cat", k=True),
    "branches width": lambda m: m.branches("The cat", width=2.0),
    "branches depth": lambda m: m.branches("The cat", depth="2"),
    "greedy_and_beam steps": lambda m: m.greedy_and_beam("The cat", steps=2.5),
    "greedy_and_beam beams": lambda m: m.greedy_and_beam("The cat", beams=3.5),
    "nearest_tokens k": lambda m: m.nearest_tokens("cat", k=1.5),
    "analogy k": lambda m: m.analogy(["king", "woman"], ["man"], k=2.5),
    "trace max_new_tokens": lambda m: m.trace("The cat", max_new_tokens=1.5),
    "activation_outliers layer": lambda m: m.activation_outliers("The cat", layer=1.5),
    "open_block layer": lambda m: m.open_block("The cat", layer=0.5),
    "rotary head": lambda m: m.rotary("The cat", head="first"),
    "journey layer": lambda m: m.journey("The cat", layer=1.5),
    "sentence_vectors layer": lambda m: m.sentence_vectors(["The cat"], layer="last"),
}


@pytest.mark.parametrize("name", sorted(COUNT_CALLS))
def test_a_count_that_is_not_a_whole_number_is_named(decoder, name):
    argument = name.split()[1]
    with pytest.raises(InputError, match=f"^{argument}=.*: pass a whole number"):
        COUNT_CALLS[name](decoder)


def test_integer_scalars_still_work(decoder):
    assert len(decoder.next_tokens("The cat", k=np.int64(3)).tokens) == 3
    assert len(decoder.kv_cache("The cat", steps=torch.tensor(2)).tokens) >= 2


# --- 2. lists of texts ---------------------------------------------------------------------------

TEXT_LIST_CALLS = {
    "precisions texts": lambda m, texts: m.precisions(texts),
    "sentence_vectors sentences": lambda m, texts: m.sentence_vectors(texts),
    "word_in_contexts contexts": lambda m, texts: m.word_in_contexts("cat", texts),
    "analogy positive": lambda m, texts: m.analogy(texts, ["man"]),
    "analogy negative": lambda m, texts: m.analogy(["king"], texts),
}


@pytest.mark.parametrize("name", sorted(TEXT_LIST_CALLS))
def test_a_bare_string_is_not_a_list_of_texts(decoder, monkeypatch, name):
    monkeypatch.setattr(decoder.model, "forward", lambda *a, **k: pytest.fail("the model ran"))
    argument = name.split()[1]
    with pytest.raises(InputError, match=f"^{argument}='The cat sat.': pass a list of texts"):
        TEXT_LIST_CALLS[name](decoder, "The cat sat.")


@pytest.mark.parametrize("name", [n for n in sorted(TEXT_LIST_CALLS) if n != "analogy negative"])
def test_an_empty_list_of_texts_is_refused(decoder, name):
    argument = name.split()[1]
    with pytest.raises(EmptyInputError, match=f"^{argument}=\\[\\]: the .* list is empty"):
        TEXT_LIST_CALLS[name](decoder, [])


# --- 3. the views' and labs' indices and choices ---------------------------------------------------


@pytest.fixture(scope="module")
def cat_trace(decoder):
    return decoder.trace("The cat sat")


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"head": "max"}, r"^head='max': pass a whole number \(e.g. 0\) or 'mean'"),
        ({"head": 1.5}, r"^head=1.5: pass a whole number"),
        ({"layer": "last"}, r"^layer='last': pass a whole number"),
        ({"part": ["self-attention"]}, r"^part=\['self-attention'\]: choose one of 'self-attention'"),
        ({"part": "cross"}, r"^part='cross': choose one of 'self-attention'"),
    ],
)
def test_attention_view_and_lab_name_a_bad_index_or_choice(cat_trace, options, phrase):
    with pytest.raises(InputError, match=phrase):
        li.views.attention(cat_trace, **options)
    with pytest.raises(InputError, match=phrase):
        li.labs.attention(cat_trace, **options)


def test_attention_lab_takes_integer_scalars_and_refuses_bools(cat_trace):
    assert li.labs.attention(cat_trace, layer=np.int64(1), head=np.int64(2)).head == 2
    with pytest.raises(InputError, match="^head=True: pass a whole number"):
        li.labs.attention(cat_trace, head=True)


def test_other_views_and_labs_check_their_counts(decoder):
    with pytest.raises(InputError, match="^window=2.5: pass a whole number"):
        li.views.masks(window=2.5)
    with pytest.raises(InputError, match=r"^lengths=10: pass two text lengths"):
        li.views.masks(lengths=10)
    with pytest.raises(InputError, match="^n=0: pass a whole number of at least 1"):
        li.labs.masks(n=0)
    with pytest.raises(InputError, match="^k=2.5: pass a whole number"):
        li.labs.importance(decoder, k=2.5)
    with pytest.raises(InputError, match="^open_levels=1.5: pass a whole number"):
        li.views.outline(decoder.outline(), open_levels=1.5)


# --- 4. saving a view --------------------------------------------------------------------------------


def test_save_creates_missing_folders(encoder, tmp_path):
    view = li.views.tokens(encoder.tokenize("a cat"))
    saved = li.views.save(view, tmp_path / "missing" / "folder" / "x.html")
    assert saved.is_file() and "<html>" in saved.read_text()


def test_save_onto_a_folder_or_a_non_path_is_refused(tmp_path):
    figure = li.views.masks()
    with pytest.raises(InputError, match="that is a folder; pass a file name inside it"):
        li.views.save(figure, tmp_path)
    with pytest.raises(InputError, match="pass a file name such as 'view.html'"):
        li.views.save(figure, 3)
    blocker = tmp_path / "a file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot create its folder"):
        li.views.save(figure, blocker / "x.html")


# --- 5. heads through the Inspector -------------------------------------------------------------------


@pytest.mark.parametrize("heads", [[3], (3, 1), [(1,)], ["a", "b"]])
def test_ablate_and_heads_off_refuse_heads_that_are_not_pairs(decoder, heads):
    with pytest.raises(InputError, match=r"heads=\[\(layer, head\), ...\]|pass a list of pairs"):
        decoder.ablation("The capital of France is", " Paris", heads=heads)
    with pytest.raises(InputError, match=r"heads=\[\(layer, head\), ...\]|pass a list of pairs"):
        decoder.heads_off(heads)
