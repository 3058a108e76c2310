"""Code exercises: a learner's function checked against the real model, the common mistakes named.

For every exercise: the reference solution is right; each listed mistake, written here the way a
learner would write it (not the exercise's own simulation), gets that mistake's name and hint; a
stub gets "not written"; a function that raises gets its own error back; a wrong type or shape is
named. The referees (captum, transformers' processors, the gguf package, the tokenizers library,
the model's own modules) are checked to agree with the reference on every case.
"""

from __future__ import annotations

import pytest
import torch
from conftest import embedded

from llminspect.teaching import course_models
from llminspect.teaching.code_exercises import BY_NAME
from llminspect.teaching.code_exercises.checking import is_stub, learner_traceback


@pytest.fixture(autouse=True)
def shared_models(monkeypatch):
    """The session's embedded models (conftest) instead of a second copy loaded by the exercises."""
    monkeypatch.setattr(course_models, "embedded", embedded)


# --- each mistake as a learner writes it ---------------------------------------------------------


def _causal(scores, diagonal=1):
    n = scores.shape[0]
    return scores.masked_fill(torch.triu(torch.ones(n, n), diagonal=diagonal).bool(), -float("inf"))


ATTENTION = {
    "forgetting ÷√d": lambda q, k, v: ((w := torch.softmax(_causal(q @ k.T), dim=-1)), w @ v),
    "dividing by d instead of √d": lambda q, k, v: ((w := torch.softmax(_causal(q @ k.T / 64), dim=-1)), w @ v),
    "a softmax over the wrong axis": lambda q, k, v: ((w := torch.softmax(_causal(q @ k.T / 8), dim=0)), w @ v),
    "forgetting the causal mask": lambda q, k, v: ((w := torch.softmax(q @ k.T / 8, dim=-1)), w @ v),
    "masking the diagonal too": lambda q, k, v: ((w := torch.softmax(_causal(q @ k.T / 8, 0), dim=-1)), w @ v),
    "forgetting to subtract each row's largest score before exp (overflow)": lambda q, k, v: (
        (w := torch.exp(_causal(q @ k.T / 8)) / torch.exp(_causal(q @ k.T / 8)).sum(1, keepdim=True)), w @ v),
    "masking with 0 instead of -inf": lambda q, k, v: (
        (w := torch.softmax((q @ k.T / 8) * torch.tril(torch.ones(len(q), len(q))), dim=-1)), w @ v),
    "masking after the softmax": lambda q, k, v: ((w := torch.softmax(q @ k.T / 8, dim=-1) * torch.tril(
        torch.ones(len(q), len(q)))), w @ v),
    "multiplying v by the transposed weights": lambda q, k, v: (
        (w := torch.softmax(_causal(q @ k.T / 8), dim=-1)), w.T @ v),
}


def _top_k(scores, k):
    return scores if k == 0 else torch.where(scores < torch.topk(scores, k).values[-1], -float("inf"), scores)


def _top_p(scores, p, keep_crossing=True):
    if p >= 1:
        return scores
    probs, order = torch.sort(torch.softmax(scores, -1), descending=True)
    mass = torch.cumsum(probs, 0)
    drop = (mass - probs >= p) if keep_crossing else (mass > p)
    out = scores.clone()
    out[order[drop]] = -float("inf")
    return out


SAMPLING = {
    "a temperature applied to the probabilities (or not at all)": lambda x, t, k, p: torch.softmax(
        _top_p(_top_k(x, k), p), -1),
    "a temperature applied after the cuts": lambda x, t, k, p: torch.softmax(_top_p(_top_k(x, k), p) / t, -1),
    "multiplying by the temperature": lambda x, t, k, p: torch.softmax(_top_p(_top_k(x * t, k), p), -1),
    "a top-p that drops the token that crosses p": lambda x, t, k, p: torch.softmax(
        _top_p(_top_k(x / t, k), p, keep_crossing=False), -1),
    "top-p before top-k": lambda x, t, k, p: torch.softmax(_top_k(_top_p(x / t, p), k), -1),
    "keeping exactly k tokens at a tie": lambda x, t, k, p: torch.softmax(_top_p(
        x / t if k == 0 else torch.full_like(x, -float("inf")).scatter(0, torch.topk(x / t, k).indices,
                                                                      torch.topk(x / t, k).values), p), -1),
    "a top-k that keeps one token too many": lambda x, t, k, p: torch.softmax(_top_p(
        x / t if k == 0 else _top_k(x / t, k + 1), p), -1),
    "setting cut scores to 0 instead of -inf": lambda x, t, k, p: torch.softmax(torch.where(
        _top_p(_top_k(x / t, k), p) == -float("inf"), 0.0, x / t), -1),
    "forgetting to renormalise after the cuts": lambda x, t, k, p: torch.softmax(x / t, -1) * (
        _top_p(_top_k(x / t, k), p) > -float("inf")),
    "returning scores instead of probabilities": lambda x, t, k, p: _top_p(_top_k(x / t, k), p),
}


def _rms(x, eps):
    return torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps)


RMS_NORM = {
    "subtracting the mean (that is LayerNorm)": lambda x, w, eps: torch.nn.functional.layer_norm(
        x, x.shape[-1:], eps=eps) * w,
    "forgetting ε": lambda x, w, eps: x / _rms(x, 0.0) * w,
    "adding ε outside the root": lambda x, w, eps: x / (_rms(x, 0.0) + eps) * w,
    "forgetting the weight": lambda x, w, eps: x / _rms(x, eps),
    "dividing by the mean square without the root": lambda x, w, eps: x / _rms(x, eps) ** 2 * w,
    "a sum instead of a mean": lambda x, w, eps: x / torch.sqrt((x * x).sum(-1, keepdim=True) + eps) * w,
    "normalising over the tokens axis": lambda x, w, eps: x / torch.sqrt((x * x).mean(0) + eps) * w,
}

LENS_ROW = {
    "an off-by-one layer (streams[layer] is the stream *entering* block layer)": lambda s, layer, norm, head: (
        torch.log_softmax(head(norm(s[layer, -1])), -1)),
    "skipping the final norm": lambda s, layer, norm, head: torch.log_softmax(head(s[layer + 1, -1]), -1),
    "returning probabilities instead of log-probabilities": lambda s, layer, norm, head: torch.softmax(
        head(norm(s[layer + 1][-1])), -1),
    "reading the first position": lambda s, layer, norm, head: torch.log_softmax(head(norm(s[layer + 1, 0])), -1),
    "returning raw scores": lambda s, layer, norm, head: head(norm(s[layer + 1, -1])),
}


def _llama_parts(c, kv=None, gate=True, norms=2, biases=True, output=True):
    h, heads, i = c.hidden_size, c.num_attention_heads, c.intermediate_size
    kv, d = kv or c.num_key_value_heads, h // heads
    total = h * h + 2 * h * kv * d + (h * h if output else 0) + (3 if gate else 2) * h * i + norms * h
    if biases and getattr(c, "attention_bias", False):
        total += h + 2 * kv * d + (h if output else 0)
    if biases and getattr(c, "mlp_bias", False):
        total += (2 if gate else 1) * i + h
    return total


BLOCK_PARAMETERS = {
    "forgetting grouped-query attention (k and v as big as q)": lambda c: _llama_parts(
        c, kv=c.num_attention_heads, biases=False),
    "forgetting the MLP's gate": lambda c: _llama_parts(c, gate=False),
    "forgetting the norms": lambda c: _llama_parts(c, norms=0),
    "counting one norm": lambda c: _llama_parts(c, norms=1),
    "leaving out the biases": lambda c: _llama_parts(c, biases=False),
    "forgetting the output projection": lambda c: _llama_parts(c, output=False),
}


def _q8(block, scale, rounding, stored=torch.float16):
    q = rounding(block / scale).to(torch.int8)
    kept = torch.tensor(float(scale)).to(stored)
    return float(kept), q, kept.float() * q.float()


def _away(x):
    return torch.where(x >= 0, torch.floor(x + 0.5), torch.ceil(x - 0.5))


Q8_0 = {
    "a scale from the largest weight, not the largest magnitude": lambda b: _q8(b, b.max() / 127, _away),
    "dividing by 128": lambda b: _q8(b, b.abs().max() / 128, _away),
    "truncating instead of rounding": lambda b: _q8(b, b.abs().max() / 127, torch.trunc),
    "rounding halves to even (torch.round)": lambda b: _q8(b, b.abs().max() / 127, torch.round),
    "keeping the scale in float32": lambda b: _q8(b, b.abs().max() / 127, _away, torch.float32),
    "rounding halves up": lambda b: _q8(b, b.abs().max() / 127, lambda x: torch.floor(x + 0.5)),
    "dequantizing with the unrounded scale": lambda b: (lambda scale, q, _: (scale, q, q.float() * (
        b.abs().max() / 127)))(*_q8(b, b.abs().max() / 127, _away)),
    "multiplying in float16": lambda b: (lambda scale, q, _: (scale, q, torch.tensor(scale).half() * q.half()))(
        *_q8(b, b.abs().max() / 127, _away)),
}


def _cosines(table, i):
    return table @ table[i] / (table.norm(dim=1) * table[i].norm())


NEAREST = {
    "a dot product without normalising": lambda t, i, k: [j for j in torch.argsort(t @ t[i], descending=True)
                                                          .tolist() if j != i][:k],
    "leaving the row itself in": lambda t, i, k: torch.argsort(_cosines(t, i), descending=True)[:k].tolist(),
    "sorting the wrong way (farthest first)": lambda t, i, k: [j for j in torch.argsort(_cosines(t, i)).tolist()
                                                               if j != i][:k],
    "Euclidean distance instead of cosine": lambda t, i, k: [j for j in torch.argsort((t - t[i]).norm(dim=1))
                                                             .tolist() if j != i][:k],
    "returning the cosines instead of the row indices": lambda t, i, k: sorted(
        [c for j, c in enumerate(_cosines(t, i).tolist()) if j != i], reverse=True)[:k],
}


def _merge_loop(pieces, pair, stop=0):
    out, i = [], 0
    while i < len(pieces) - stop:
        if i + 1 < len(pieces) and pieces[i] == pair[0] and pieces[i + 1] == pair[1]:
            out, i = out + [pieces[i] + pieces[i + 1]], i + 2
        else:
            out, i = out + [pieces[i]], i + 1
    return out


def _overlapping(pieces, pair):  # every position checked, none skipped after a merge
    out = []
    for i in range(len(pieces)):
        if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == pair:
            out.append(pieces[i] + pieces[i + 1])
        elif i == 0 or (pieces[i - 1], pieces[i]) != pair:
            out.append(pieces[i])
    return out


def _first_only(pieces, pair):
    for i in range(len(pieces) - 1):
        if (pieces[i], pieces[i + 1]) == pair:
            return pieces[:i] + [pair[0] + pair[1]] + pieces[i + 2:]
    return pieces


def _right_to_left(pieces, pair):
    out, i = [], len(pieces) - 1
    while i >= 0:
        if i > 0 and (pieces[i - 1], pieces[i]) == pair:
            out, i = [pieces[i - 1] + pieces[i]] + out, i - 2
        else:
            out, i = [pieces[i]] + out, i - 1
    return out


BPE_MERGE = {
    "merging overlapping occurrences": _overlapping,
    "replacing text across piece boundaries": lambda pieces, pair: " ".join(pieces).replace(
        f"{pair[0]} {pair[1]}", pair[0] + pair[1]).split(),
    "merging only the first occurrence": _first_only,
    "reading right to left": _right_to_left,
    "losing the last piece": lambda pieces, pair: _merge_loop(pieces, pair, stop=1),
}


def _ig(f, x, b, n, alphas=None, factor=None, scale=1.0):
    alphas = torch.linspace(1 / n, 1, n) if alphas is None else alphas
    grads = []
    for a in alphas:
        point = (b + a * (x - b)).detach().requires_grad_(True)
        grads.append(torch.autograd.grad(f(point[None]).sum(), point)[0])
    mean = torch.stack(grads).mean(0) * scale
    return mean if factor is None else factor * mean


INTEGRATED_GRADIENTS = {
    "forgetting × (x − baseline)": lambda f, x, b, n: _ig(f, x, b, n),
    "multiplying by x instead of (x − baseline)": lambda f, x, b, n: _ig(f, x, b, n, factor=x),
    "summing the gradients instead of averaging": lambda f, x, b, n: _ig(f, x, b, n, factor=x - b, scale=n),
    "starting α at 0 (the left Riemann sum)": lambda f, x, b, n: _ig(f, x, b, n, torch.arange(n) / n, x - b),
    "gradient × input (no path at all)": lambda f, x, b, n: _ig(f, x, b, n, torch.ones(1), x),
}


def _effect(m, prompt, answer, edit, position=-1, read=torch.log_softmax, layer_shift=0, layer=None):
    token = m.tokenizer(answer).input_ids[0]
    clean = read(m.run(prompt).logits[0, position], -1)[token]
    after = read(m.run(prompt, edit={f"layer.{layer}.attention.heads": edit}).logits[0, position], -1)[token]
    return (after - clean).item()


def _zero(index):
    def edit(heads):
        heads[index] = 0
        return heads

    return edit


HEAD_OFF = {
    "zeroing the tokens axis": lambda m, p, a, layer, h: _effect(m, p, a, _zero((slice(None), h)), layer=layer),
    "switching the whole layer off": lambda m, p, a, layer, h: _effect(m, p, a, _zero(...), layer=layer),
    "an edit that returns nothing": lambda m, p, a, layer, h: _effect(
        m, p, a, lambda heads: heads.__setitem__((slice(None), slice(None), h), 0), layer=layer),
    "reading the first position": lambda m, p, a, layer, h: _effect(
        m, p, a, _zero((slice(None), slice(None), h)), position=0, layer=layer),
    "comparing probabilities instead of log-probabilities": lambda m, p, a, layer, h: _effect(
        m, p, a, _zero((slice(None), slice(None), h)), read=torch.softmax, layer=layer),
    "the sign flipped": lambda m, p, a, layer, h: -_effect(m, p, a, _zero((slice(None), slice(None), h)),
                                                           layer=layer),
}

def _second_copy(pattern, period, offset=1, start=0):
    rows = range(period + start, pattern.shape[0])
    return [float(pattern[t, t - period + offset]) for t in rows]


INDUCTION = {
    "reading the earlier copy of the same token (t − period)": lambda a, p: sum(_second_copy(a, p, 0)) / p,
    "starting one query early (t from period − 1)": lambda a, p: sum(vals := _second_copy(a, p, start=-1)) / len(
        vals),
    "averaging over every query, the first copy's too": lambda a, p: sum(_second_copy(a, p)) / a.shape[0],
    "a transposed map (pattern[key, query])": lambda a, p: sum(_second_copy(a.T, p)) / (a.shape[0] - p),
    "a sum instead of a mean": lambda a, p: sum(_second_copy(a, p)),
}

WRITTEN = {"induction_score": INDUCTION, "attention_head": ATTENTION, "sampling_filter": SAMPLING, "rms_norm": RMS_NORM,
           "lens_row": LENS_ROW, "block_parameters": BLOCK_PARAMETERS, "q8_0": Q8_0, "nearest_rows": NEAREST,
           "bpe_merge": BPE_MERGE, "integrated_gradients": INTEGRATED_GRADIENTS, "head_off": HEAD_OFF}  # fmt: skip
NEEDS_THE_DECODER_MANY_TIMES = {"integrated_gradients", "head_off"}  # each mistake runs the decoder: full suite


def exercise_ids():
    return [pytest.param(name, marks=[pytest.mark.slow] if name in NEEDS_THE_DECODER_MANY_TIMES else [])
            for name in sorted(BY_NAME)]  # fmt: skip


def test_every_exercise_has_its_mistakes_written_here():
    assert set(WRITTEN) == set(BY_NAME)
    for name, exercise in BY_NAME.items():
        assert set(WRITTEN[name]) == {mistake.name for mistake in exercise.mistakes}, name
        assert len(exercise.mistakes) >= 4


@pytest.mark.parametrize("name", exercise_ids())
def test_the_reference_is_right_and_each_mistake_gets_its_own_hint(name):
    exercise = BY_NAME[name]
    right = exercise.check(1, exercise.reference)
    assert right.verdict == "right", right.text
    assert f"right on {len(exercise.built())} cases" in right.text and f"tolerance {exercise.tolerance:g}" in right.text
    hints = {mistake.name: mistake.hint for mistake in exercise.mistakes}
    for mistake, wrong in WRITTEN[name].items():
        said = exercise.check(1, wrong)
        assert (said.verdict, said.mistake) == ("mistake", mistake), (mistake, said.text)
        assert hints[mistake] in said.text


def stub(*args):
    """What the lesson hands out."""
    ...


def raising(*args):
    return undefined_name  # noqa: F821 - the learner's own slip


@pytest.mark.parametrize("name", exercise_ids())
def test_stubs_errors_and_wrong_types_are_said_plainly(name):
    exercise = BY_NAME[name]
    assert exercise.check(1, stub).verdict == "not written"
    said = exercise.check(1, raising)
    assert said.verdict == "raised" and "NameError: name 'undefined_name' is not defined" in said.text
    assert "return undefined_name" in said.text and "checking.py" not in said.text  # the learner's line, not ours
    said = exercise.check(1, lambda *args: None)
    assert said.verdict == "not yet" and "returned None" in said.text
    said = exercise.check(1, lambda *args: "text")
    assert said.verdict == "not yet" and "it is a str where" in said.text
    assert exercise.check(1, None).verdict == "no answer"
    assert exercise.check(1, 3).verdict == "not yet"


def test_a_wrong_shape_is_named_with_both_shapes():
    exercise = BY_NAME["attention_head"]
    said = exercise.check(4, lambda q, k, v: 2 * [exercise.reference(q, k, v)[0]])  # the weights twice
    assert "the output: the shape is (12, 12) where (12, 64) is expected" in said.text


def test_a_function_that_changes_its_input_cannot_change_the_cases():
    exercise = BY_NAME["bpe_merge"]

    def emptying(pieces, pair):  # right, but it eats its input
        merged = []
        while pieces:
            piece = pieces.pop(0)
            if merged and (merged[-1], piece) == tuple(pair) and not getattr(emptying, "joined", False):
                merged[-1] += piece
                emptying.joined = True
            else:
                merged.append(piece)
                emptying.joined = False
        return merged

    for _ in range(2):
        assert exercise.check(1, emptying).verdict == "right"
    assert exercise.check(1, lambda pieces, pair: tuple(exercise.reference(pieces, pair))).verdict == "right"
    assert exercise.check(1, exercise.reference).verdict == "right"


def test_a_mistake_is_named_only_when_it_also_agrees_where_the_learner_is_right():
    def q_k_v_biases_only(config):  # o's missing bias is hidden-sized: one norm's worth, on one case only
        total = BY_NAME["block_parameters"].reference(config)
        return total - config.hidden_size if getattr(config, "attention_bias", False) else total

    said = BY_NAME["block_parameters"].check(3, q_k_v_biases_only)
    assert said.verdict == "not yet" and "counting one norm" not in said.text


def test_a_numpy_array_of_rows_counts_as_a_list():
    import numpy as np

    exercise = BY_NAME["nearest_rows"]
    assert exercise.check(2, lambda t, i, k: np.array(exercise.reference(t, i, k))).verdict == "right"


def test_a_stub_is_only_a_body_of_dots_or_pass():
    def written(x):
        """doc"""
        return x

    def passing(x):
        pass

    assert is_stub(stub) and is_stub(passing) and not is_stub(written) and not is_stub(lambda x: ...)


def test_a_learner_traceback_keeps_their_frames_only():
    try:
        raising()
    except NameError as error:
        text = learner_traceback(error)
    assert text.splitlines()[-1] == "NameError: name 'undefined_name' is not defined"
    assert "test_code_exercises.py" in text


# --- the referees agree with the references --------------------------------------------------


def test_attention_cases_are_the_decoders_own_head(decoder):
    case = BY_NAME["attention_head"].built()[0]
    trace = decoder.trace("The animal didn't cross the street because it was too tired")
    weights, output = case.expected
    assert torch.allclose(weights, trace.attentions[13, 8], atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(len(weights)), atol=1e-5) and weights[0, 1:].abs().max() == 0
    q, k, v = case.args
    assert torch.allclose(output, weights @ v, atol=1e-5)  # v is the key/value head this query head reads


def test_integrated_gradients_is_complete_on_the_cubic_with_enough_steps():
    exercise = BY_NAME["integrated_gradients"]
    for case in exercise.built()[1:]:
        f, x, baseline, _ = case.args
        exact = float(f(x[None]) - f(baseline[None]))
        assert float(exercise.reference(f, x, baseline, 4000).sum()) == pytest.approx(exact, rel=2e-3)


def test_block_counts_agree_with_lesson_07s_anatomy_and_q8_0_ties_are_exact():
    from llminspect.analysis.anatomy import anatomy

    for case in BY_NAME["block_parameters"].built()[:4]:  # the shipped architectures
        found = anatomy(case.label)
        assert case.expected == found.block_parameters and case.expected * found.layers == found.blocks_parameters
    halfway = BY_NAME["q8_0"].built()[3]
    assert halfway.expected[0] == 1.0 and halfway.expected[1][1:4].tolist() == [-15, -14, -13]  # -14.5 -> -15
