"""Next-token distributions and token healing, against a raw forward and torch math."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import llminspect as li
from llminspect import errors


def raw_last_probs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model.model(input_ids=torch.tensor([ids])).logits[0, -1].double().softmax(-1)


def test_next_tokens_are_the_softmax_of_the_last_logits(decoder):
    result = decoder.next_tokens("The capital of France is", k=5)
    probs = raw_last_probs(decoder, decoder.tokenizer("The capital of France is").input_ids)
    values, indices = probs.topk(5)
    assert result.ids == indices.tolist()
    assert result.probabilities == pytest.approx(values.tolist(), abs=1e-6)
    assert result.tokens[0] == " Paris"
    with torch.no_grad():  # a separate forward pass (with an attention mask): agree within float32
        logits = decoder.model(**decoder.tokenizer("The capital of France is", return_tensors="pt")).logits[0, -1]
    log_p = logits.double().log_softmax(-1)
    expected_entropy = -(log_p.exp() * log_p).sum().item() / math.log(2)  # in bits
    assert result.entropy == pytest.approx(expected_entropy, rel=1e-4)


def test_answer_probabilities_read_the_softmax_of_one_token_answers(decoder, encoder):
    prompt = "When Mary and John went to the store, John gave a drink to"
    found = decoder.answer_probabilities(prompt, [" Mary", " John"])
    probs = raw_last_probs(decoder, decoder.tokenizer(prompt).input_ids)
    ids = [decoder.tokenizer(" Mary").input_ids[0], decoder.tokenizer(" John").input_ids[0]]
    assert list(found.values()) == pytest.approx(probs[ids].tolist(), abs=1e-6)
    assert found[" Mary"] > 0.5 > 0.05 > found[" John"]  # lesson 03's control: the model names the receiver
    with pytest.raises(errors.InputError, match="one token"):
        decoder.answer_probabilities(prompt, [" Marianne-Louise"])
    with pytest.raises(errors.FamilyError, match="encoder family"):
        encoder.answer_probabilities(prompt, [" Mary"])
    with pytest.raises(errors.InputError, match="list"):
        decoder.answer_probabilities(prompt, " Mary")


def test_healing_renormalizes_over_tokens_that_start_with_the_removed_text(decoder):
    healed = decoder.healing("The url is http:", k=5)
    assert healed.removed == ":" and healed.after.prompt == "The url is http"
    tokenizer = decoder.tokenizer
    ids = tokenizer("The url is http:").input_ids
    probs = raw_last_probs(decoder, ids[:-1])
    # independent: which vocabulary entries decode to text starting with ":"
    allowed = torch.tensor([tokenizer.decode([i]).startswith(":") for i in range(len(tokenizer))])
    kept = torch.where(allowed, probs[: len(tokenizer)], 0.0)
    assert healed.mass == pytest.approx(kept.sum().item(), rel=1e-5)
    values, indices = (kept / kept.sum()).topk(5)
    assert healed.after.ids == indices.tolist()
    assert healed.after.probabilities == pytest.approx(values.tolist(), abs=1e-6)
    assert healed.after.tokens[0] == "://" and healed.after.probabilities[0] > 0.9
    assert healed.before.tokens[0] != "//" and "//" in healed.before.tokens  # "//" is there, but far behind
    assert healed.before.probabilities[healed.before.tokens.index("//")] < 0.1


def test_healing_and_next_tokens_need_a_decoder(encoder, decoder):
    with pytest.raises(errors.FamilyError, match="works for decoder models; encoder is from the encoder family"):
        encoder.healing("The url is http:")
    with pytest.raises(errors.FamilyError, match="encoder family"):
        encoder.next_tokens("The url is")
    with pytest.raises(errors.InputError, match="at least two tokens"):
        decoder.healing("http")
    with pytest.raises(errors.EmptyInputError):
        decoder.next_tokens("")


# --- knobs: the distribution generate() samples from ----------------------------------------------

from transformers import GenerationConfig  # noqa: E402

from llminspect.analysis.sampling import Knobs, apply_knobs  # noqa: E402
from llminspect.models.registry import sample_audio  # noqa: E402

AI = "The best thing about AI is its ability to"


def generate_step(decoder, knobs: Knobs) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``generate``: the raw logits it computed, and the distribution it samples from."""
    ids = decoder.tokenizer(AI, return_tensors="pt").input_ids
    config = GenerationConfig(
        do_sample=knobs.temperature > 0,
        max_new_tokens=1,
        output_scores=True,
        output_logits=True,
        return_dict_in_generate=True,
        temperature=knobs.temperature or 1.0,
        top_k=knobs.top_k,
        top_p=knobs.top_p,
        min_p=knobs.min_p,
        repetition_penalty=knobs.repetition_penalty,
        pad_token_id=decoder.tokenizer.eos_token_id,
    )
    with torch.no_grad():
        out = decoder.model.generate(ids, generation_config=config)
    scores = out.scores[0][0]
    if knobs.temperature == 0:  # greedy: generate picks the argmax of the (penalized) scores
        return out.logits[0][0], torch.nn.functional.one_hot(scores.argmax(), scores.shape[-1]).double()
    return out.logits[0][0], scores.double().softmax(-1)


SETTINGS = [
    Knobs(),
    Knobs(temperature=0.7, top_p=0.9),  # Llama 2's example defaults
    Knobs(temperature=0.01),
    Knobs(temperature=0),
    Knobs(top_k=1),
    Knobs(top_p=1.0, min_p=0.0),
    Knobs(top_k=40, top_p=0.95, min_p=0.05, repetition_penalty=1.3, temperature=1.5),
]
_rng = np.random.default_rng(7)
SETTINGS += [
    Knobs(
        temperature=round(float(_rng.uniform(0.05, 2)), 2),
        top_k=int(_rng.integers(0, 100)),
        top_p=round(float(_rng.uniform(0.05, 1)), 2),
        min_p=round(float(_rng.uniform(0, 0.3)), 2),
        repetition_penalty=round(float(_rng.uniform(1, 2)), 2),
    )
    for _ in range(8)
]


@pytest.mark.parametrize("knobs", SETTINGS, ids=str)
def test_final_distribution_is_what_generate_samples_from(decoder, knobs):
    # The claim is about the processors, so both sides start from the *same* logits: generate's own.
    # (Two separate forward passes differ by ~1e-7, which temperature 0.01 multiplies by 100.)
    raw, expected = generate_step(decoder, knobs)
    ours = apply_knobs(raw, decoder.tokenizer(AI).input_ids, knobs)[-1].probabilities
    torch.testing.assert_close(ours, expected, atol=1e-9, rtol=1e-9)


def test_the_labs_cached_logits_are_a_plain_forward_pass(decoder):
    lab = decoder.sampling(AI)
    raw, _ = generate_step(decoder, Knobs())
    # separate forward passes (generate adds an attention mask): equal within float32 rounding
    torch.testing.assert_close(lab.logits, raw.float(), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(lab.stages(Knobs())[0].probabilities, raw.double().softmax(-1), atol=1e-6, rtol=1e-4)


def test_each_stage_reports_entropy_and_kept_set(decoder):
    stages = decoder.sampling(AI).stages(Knobs(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05))
    assert [s.name for s in stages] == ["model", "temperature 0.7", "top-k 50", "top-p 0.9", "min-p 0.05"]
    for stage in stages:
        p = stage.probabilities[stage.probabilities > 0]
        assert stage.entropy == pytest.approx(float(-(p * p.log2()).sum()), rel=1e-9)
        assert stage.kept == len(p)
    assert [s.kept for s in stages][:3] == [49152, 49152, 50] and stages[-1].kept <= stages[-2].kept
    assert stages[0].probabilities.topk(1).indices.item() == decoder.tokenizer(" make").input_ids[0]


def test_seeds_reproduce_and_steps_follow_generate(decoder):
    lab = decoder.sampling("The capital of France is")
    knobs = Knobs(temperature=1.0)
    assert lab.sample(knobs, seed=3) == lab.sample(knobs, seed=3)
    assert len({lab.sample(knobs, seed=s) for s in range(20)}) > 1
    for _ in range(3):
        lab.append(int(lab.stages(Knobs(temperature=0))[-1].probabilities.argmax()), "greedy")
    ids = decoder.tokenizer("The capital of France is", return_tensors="pt").input_ids
    greedy = decoder.model.generate(ids, do_sample=False, max_new_tokens=3, pad_token_id=0)[0].tolist()
    assert lab.ids == greedy and lab.text.startswith("The capital of France is Paris")
    lab.undo()
    assert lab.ids == greedy[:-1] and len(lab.chosen) == 2


def test_branches_multiply_step_probabilities(decoder):
    tree = decoder.branches("The capital of France is", width=2, depth=2)
    assert len(tree) == 4 and tree[0].tokens == [" Paris", "."]
    ids = decoder.tokenizer("The capital of France is").input_ids
    paris, dot = (decoder.tokenizer(t, add_special_tokens=False).input_ids[0] for t in (" Paris", "."))
    with torch.no_grad():
        p1 = decoder.model(input_ids=torch.tensor([ids])).logits[0, -1].double().softmax(-1)[paris]
        p2 = decoder.model(input_ids=torch.tensor([ids + [paris]])).logits[0, -1].double().softmax(-1)[dot]
    assert tree[0].probability == pytest.approx(float(p1 * p2), rel=1e-5)
    assert [b.probability for b in tree] == sorted((b.probability for b in tree), reverse=True)
    with pytest.raises(errors.InputError, match="small"):
        decoder.branches("x y", width=10, depth=5)


def test_perplexity_is_exp_of_the_language_model_loss(decoder):
    text = "The capital of France is Paris."
    result = decoder.surprisal(text)
    ids = decoder.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        loss = decoder.model(input_ids=ids, labels=ids).loss
    assert result.perplexity == pytest.approx(math.exp(loss.item()), rel=1e-4)
    assert len(result.bits) == ids.shape[1] - 1 and result.tokens[-2] == "␣Paris"
    assert result.bits[-2] < 1.0  # " Paris" surprises it little (p ~ 0.77)


def test_knobs_on_the_decoder_side_of_encoder_decoders(toy, whisper):
    lab = toy.sampling("", source="happy bird eats mouse")
    for _ in range(4):
        lab.append(int(lab.stages(Knobs(temperature=0))[-1].probabilities.argmax()), "greedy")
    assert lab.text == "birdo gaja manghas muso"
    speech = whisper.sampling("The quick", source=sample_audio("quick_brown_fox"))
    assert whisper.tokenizer.decode([int(speech.logits.argmax())]) == " brown"
    with pytest.raises(errors.InputError, match="source="):
        toy.sampling("birdo")


def test_sampling_widget_redraws_on_cached_logits(decoder, monkeypatch):
    widget = li.labs.sampling(decoder, AI)
    lab = widget.sampling
    forwards = []
    monkeypatch.setattr(lab, "_refresh", lambda: forwards.append(1))  # a slider must not run the model
    widget.sliders["top_k"].value = 3
    chart = widget.chart  # drawn in the browser from these numbers alone
    assert sum(1 for value in chart.after if value > 0) == 3 and forwards == []
    top = lab.logits.double().softmax(-1).topk(15)
    assert chart.before == pytest.approx(top.values.tolist(), abs=1e-6)
    assert chart.labels == decoder_labels(decoder, top.indices.tolist()) and "3 kept" in chart.title
    monkeypatch.undo()
    widget.buttons["sample"].click()
    assert len(lab.chosen) == 1 and lab.chosen[0][1] == "sampled"
    widget.buttons["greedy"].click()
    assert lab.chosen[-1][1] == "greedy"
    widget.buttons["undo"].click()
    assert len(lab.chosen) == 1


def decoder_labels(decoder, ids):
    from llminspect.analysis.tokens import token_labels

    return token_labels(decoder.tokenizer, ids)


def test_sampling_needs_a_next_token_model(encoder):
    with pytest.raises(errors.FamilyError, match="works for decoder models and encoder-decoder models"):
        encoder.sampling("hello")


def test_knobs_from_generate_are_what_generate_really_uses(decoder):
    knobs = Knobs.from_generate(decoder.model, temperature=0.7, top_p=0.9)
    assert knobs == Knobs(temperature=0.7, top_k=50, top_p=0.9)  # transformers adds top_k=50 unless told
    ids = decoder.tokenizer(AI, return_tensors="pt").input_ids
    with torch.no_grad():  # generate told only temperature and top_p: count the tokens it can still draw
        out = decoder.model.generate(ids, do_sample=True, temperature=0.7, top_p=0.9, max_new_tokens=1,
                                     output_scores=True, return_dict_in_generate=True,
                                     pad_token_id=decoder.tokenizer.eos_token_id)  # fmt: skip
    possible = int(torch.isfinite(out.scores[0][0]).sum())
    lab = decoder.sampling(AI)
    assert lab.stages(knobs)[-1].kept == possible == 12
    assert lab.stages(Knobs(temperature=0.7, top_p=0.9))[-1].kept == 13  # without the hidden top-k
    assert Knobs.from_generate(decoder.model) == Knobs(top_k=50)
    assert Knobs.from_generate(decoder.model, top_k=0).top_k == 0
    with pytest.raises(errors.InputError, match="Unknown knob"):
        Knobs.from_generate(decoder.model, temprature=0.7)
    assert li.labs.sampling(decoder, AI, temperature=0.7).sliders["top_k"].value == 50


def test_greedy_and_beam_search(decoder):
    prompt = "The best thing about AI is its ability to"
    greedy, beam = decoder.greedy_and_beam(prompt, steps=6, beams=4)
    ids = decoder.tokenizer(prompt).input_ids
    expected, log_probs = list(ids), []
    with torch.no_grad():  # greedy by hand: the argmax, one step at a time
        for _ in range(6):
            scores = decoder.model(input_ids=torch.tensor([expected])).logits[0, -1].double().log_softmax(-1)
            expected.append(int(scores.argmax()))
            log_probs.append(float(scores.max()))
    assert greedy.text == decoder.tokenizer.decode(expected[len(ids):])
    assert greedy.log_probs == pytest.approx(log_probs, abs=1e-4)
    assert len(beam.tokens) == 6 and beam.text != greedy.text
    assert beam.total > greedy.total  # the beam found a likelier whole continuation
    with pytest.raises(errors.InputError, match="2–16 beams"):
        decoder.greedy_and_beam(prompt, beams=1)
