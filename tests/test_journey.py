"""The whole journey and the key/value cache: every number against a plain transformers forward pass."""

from __future__ import annotations

import asyncio
import importlib

import pytest
import torch

import llminspect as li
from llminspect.errors import FamilyError, InputError

PROMPT = "The capital of France is"


def test_every_stage_is_the_models_own_number(decoder):
    trip = decoder.journey(PROMPT, layer=12, head=4)
    stages = {s.name: s for s in trip.stages}
    ids = decoder.tokenizer(PROMPT).input_ids
    model = decoder.model
    seen = {}
    hook = model.model.layers[12].mlp.register_forward_hook(lambda mod, args, out: seen.setdefault("mlp", out[0]))
    try:
        with torch.no_grad():  # an independent pass, as a transformers user would write it
            out = model(input_ids=torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    finally:
        hook.remove()
    assert stages["tokenize"].numbers == [float(i) for i in ids]
    assert stages["embed"].numbers == pytest.approx(model.get_input_embeddings().weight[ids[-1], :4].tolist())
    assert stages["attention"].numbers == pytest.approx(out.attentions[12][0, 4, -1].tolist(), abs=1e-5)
    assert sum(stages["attention"].numbers) == pytest.approx(1.0, abs=1e-5)
    assert stages["MLP"].numbers == pytest.approx(seen["mlp"][-1, :4].tolist(), abs=1e-4)
    norms = torch.stack(out.hidden_states)[:, 0, -1].norm(dim=-1)
    assert stages["residual + norm, × layers"].numbers[0] == pytest.approx(float(norms[0]), rel=1e-4)
    assert stages["residual + norm, × layers"].numbers[-1] == pytest.approx(float(norms[-1]), rel=1e-4)
    top = out.logits[0, -1].double().softmax(-1).topk(5)
    assert stages["vocabulary"].numbers == pytest.approx(top.values.tolist(), abs=1e-5)
    assert trip.chosen_id == int(top.indices[0]) and trip.chosen == " Paris"
    assert stages["vocabulary"].shape == (5, 49152) and stages["embed"].shape == (5, 576)


def test_next_step_runs_the_loop_again(decoder):
    lab = li.labs.journey(decoder, PROMPT)
    lab.buttons["next step"].click()
    lab.buttons["next step"].click()
    assert lab.trip.prompt == "The capital of France is Paris."
    assert "lesson 03" in lab.children[1].value
    lab.buttons["back"].click()
    assert lab.trip.prompt == "The capital of France is Paris"


def test_the_next_step_is_ready_before_the_click_and_back_recomputes_nothing(decoder, monkeypatch):
    """In a kernel the lab computes the next step while the learner reads; the click only draws it."""
    from llminspect.analysis import journey as trips

    passes = []
    plain = trips.journey
    monkeypatch.setattr(trips, "journey", lambda *args, **kwargs: passes.append(args[1]) or plain(*args, **kwargs))

    async def a_learner_reads_then_clicks():
        lab = li.labs.journey(decoder, PROMPT)
        await asyncio.sleep(0.5)  # the kernel is idle: the lab thinks ahead
        assert len(passes) == 2
        lab.buttons["next step"].click()
        assert len(passes) == 2 and lab.trip.prompt == PROMPT + " Paris"  # drawn from what was ready
        await asyncio.sleep(0.5)
        lab.buttons["back"].click()
        lab.buttons["next step"].click()
        return lab, len(passes)

    lab, seen = asyncio.run(a_learner_reads_then_clicks())
    assert seen == 3  # one pass after the first click (the step after it); back and again: none
    again = plain(decoder, decoder.inputs(PROMPT + " Paris"), lab.trip.layer, lab.trip.head)
    assert lab.trip == again  # what was ready is what the click would have computed


def test_a_cell_run_meanwhile_throws_the_ready_step_away(decoder, monkeypatch):
    lab_module = importlib.import_module("llminspect.labs.journey")  # the module (the package names the function)
    cells = [1]
    monkeypatch.setattr(lab_module, "cells_run", lambda: cells[0])

    async def ready_then_a_cell_runs():
        lab = li.labs.journey(decoder, PROMPT)
        await asyncio.sleep(0.5)
        cells[0] = 2  # the learner ran a cell: the model may have changed
        computed = []
        monkeypatch.setattr(lab_module.trips, "journey", lambda *a, **k: computed.append(1) or lab.trip)
        lab.buttons["next step"].click()
        return computed

    assert asyncio.run(ready_then_a_cell_runs()) == [1]  # computed again on the click


def test_the_cache_saves_work_not_results(decoder):
    run = decoder.kv_cache(PROMPT, steps=12)
    ids = torch.tensor([decoder.tokenizer(PROMPT).input_ids])
    with torch.no_grad():
        generated = decoder.model.generate(ids, do_sample=False, max_new_tokens=12, min_new_tokens=12,
                                           pad_token_id=decoder.tokenizer.eos_token_id)  # fmt: skip
    from llminspect.analysis.tokens import token_labels

    assert run.tokens == run.tokens_without == token_labels(decoder.tokenizer, generated[0, 5:].tolist())
    config = decoder.config
    assert run.key_shapes == [(1, config.num_key_value_heads, 5 + step, 64) for step in range(12)]
    per_position = 2 * config.num_hidden_layers * config.num_key_value_heads * 64 * 4  # keys + values, float32
    assert run.cache_bytes == [per_position * (5 + step) for step in range(12)]
    assert run.largest_gap < 1e-3  # the same numbers up to float32 rounding
    figure = li.views.kv_cache(run)
    assert list(figure.data[0].y) == pytest.approx([b / 1024 for b in run.cache_bytes])


def test_an_encoder_decoders_loop(toy):
    result = toy.translation_steps("happy bird eats small mouse")
    trace = toy.trace("happy bird eats small mouse")
    assert [s.writes for s in result.steps] == trace.tokens.labels[1:]
    with torch.no_grad():
        out = toy.model(input_ids=torch.tensor([toy.tokenizer("happy bird eats small mouse").input_ids]),
                        decoder_input_ids=torch.tensor([trace.tokens.ids]), output_attentions=True)  # fmt: skip
    peaks = out.cross_attentions[-1][0].mean(0).argmax(-1).tolist()
    assert [s.looks_at for s in result.steps] == [result.source[p] for p in peaks[:-1]]
    assert result.steps[0].looks_at == "bird" and result.steps[1].looks_at == "happy"  # the adjective swap
    assert result.encoder_shape == (6, toy.config.d_model)
    assert "birdo" in li.views.translation(result).body


def test_wrong_family_is_refused(decoder, encoder):
    with pytest.raises(FamilyError):
        encoder.journey("The capital of France is")
    with pytest.raises(FamilyError):
        decoder.translation_steps("happy bird")
    with pytest.raises(InputError, match="layer=30: decoder has layers 0 to 29"):
        decoder.journey(PROMPT, layer=30)
    with pytest.raises(InputError, match="head=9: decoder has heads 0 to 8"):
        decoder.journey(PROMPT, head=9)
