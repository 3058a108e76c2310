"""Lesson 7 views draw the counted numbers and escape names."""

from __future__ import annotations

import numpy as np
import pytest

import llminspect as li
from llminspect.analysis.anatomy import anatomy, kv_cache_bytes, memory_plan, weight_bytes
from llminspect.analysis.experts import tiny_mixtral
from llminspect.analysis.rope import rotary_angles

V = li.views.anatomy


@pytest.fixture(scope="module")
def models():
    return [anatomy(n) for n in ("gpt2", "bert-base", "llama-2-70b", "mixtral-8x7b", "falcon-7b")]


def test_table_shows_counts_memory_and_cache(models):
    body = V.table(models).body
    for a in models:
        assert f"{weight_bytes(a) / 2**30:.1f} GiB" in body
    assert "68.98B" in body and "12.88B (2 of 8 experts)" in body
    assert "<td>GQA</td>" in body and "<td>MQA</td>" in body
    assert kv_cache_bytes(models[2]) == 320 * 1024 and "<td>320 KiB</td>" in body


def test_charts_draw_the_arithmetic(models):
    parts = {trace.name: trace for trace in V.parameters(models).data}
    np.testing.assert_allclose(parts["experts"].x[3], models[3].parts["experts"] / models[3].total)
    memory = {trace.name: trace for trace in V.memory(models, gpu_gib=24, context=2048).data}
    assert memory["weights int4"].y[2] == pytest.approx(models[2].total / 2 / 2**30)
    assert memory["KV cache, 2,048 tokens (bf16)"].y[1] is None  # an encoder keeps no cache
    assert list(memory["one 24 GiB GPU"].y) == [24] * len(models)
    kv = V.kv_cache(models, context=1000).data
    assert kv[1].y[1] / kv[0].y[1] == pytest.approx(8.0)  # Llama-2-70B's cache with full multi-head attention
    sharing = V.head_sharing(models).data[0]
    assert len(set(v for v in sharing.z[4] if v is not None)) == 1  # Falcon: every query head reads one k/v head
    assert len(set(v for v in sharing.z[2] if v is not None)) == 8


def test_positions_plan_and_experts_views(decoder, encoder):
    learned = encoder.model.embeddings.position_embeddings.weight[:16, :16].detach()
    angles = rotary_angles(anatomy("llama-2-7b"), 16)
    figure = V.positions(learned, angles, "<b>MiniLM</b>", "Llama")
    np.testing.assert_allclose(np.array(figure.data[1].z), (angles % (2 * np.pi)).numpy(), rtol=1e-6)
    assert "<b>" not in figure.layout.annotations[0].text
    big = anatomy("llama-2-70b")
    plan = memory_plan(big, 24)
    assert f"{plan.streamed_blocks} would stream" in V.plan(big, plan).body
    assert "fits" in V.plan(anatomy("llama-2-7b"), memory_plan(anatomy("llama-2-7b"), 24)).body
    routes = li.Inspector(tiny_mixtral(decoder.tokenizer), decoder.tokenizer).routing("The quick brown fox")
    np.testing.assert_allclose(np.array(V.routing(routes, 1).data[0].z), routes.mixing()[1].numpy())
    load = V.expert_load(routes).data
    np.testing.assert_allclose(load[0].y, routes.load()[0].numpy())
