"""Architectures from their configs: counts against published totals, memory arithmetic by hand."""

from __future__ import annotations

import json

import pytest
import torch

import llminspect as li
from llminspect.analysis.anatomy import (
    ARCHITECTURES,
    anatomy,
    kv_cache_bytes,
    memory_plan,
    part_of,
    shipped,
    weight_bytes,
)
from llminspect.analysis.experts import tiny_mixtral
from llminspect.errors import LLMInspectError, UnknownModelError

# published totals (model cards / papers), in billions
PUBLISHED = {
    "llama-2-7b": 6.74, "llama-2-13b": 13.0, "llama-2-70b": 69.0, "mistral-7b": 7.24, "mixtral-8x7b": 46.7,
    "llama-3-8b": 8.03, "llama-3-70b": 70.6, "gpt2": 0.124, "bert-base": 0.110, "bart-large": 0.406,
    "smollm2-135m": 0.135, "all-minilm-l6-v2": 0.0227,
}  # fmt: skip
ROUNDED = {"opt-1.3b": 1.3, "falcon-7b": 7.0, "t5-base": 0.22}  # published only as rounded sizes


def test_every_issue_architecture_and_the_embedded_models_ship():
    wanted = {"gpt2", "bert-base", "bart-large", "t5-base", "opt-1.3b", "falcon-7b", "llama-2-7b", "llama-2-13b",
              "llama-2-70b", "mistral-7b", "mixtral-8x7b", "llama-3-8b", "llama-3-70b", "smollm2-135m",
              "all-minilm-l6-v2", "whisper-tiny-en", "toy-seq2seq"}  # fmt: skip
    assert wanted <= set(shipped())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_published_totals_within_one_percent(name):
    a = anatomy(name)
    assert a.total / 1e9 == pytest.approx(PUBLISHED[name], rel=0.01)
    assert a.published == pytest.approx(PUBLISHED[name] * 1e9, rel=0.01)  # the shipped note agrees
    assert a.parts["other"] <= 0.01 * a.total  # (a pooler at most) every parameter has a part


@pytest.mark.parametrize("name", sorted(ROUNDED))
def test_counts_round_to_the_published_size(name):
    assert anatomy(name).total / 1e9 == pytest.approx(ROUNDED[name], rel=0.02)


def test_mixtral_total_and_active_parameters():
    a = anatomy("mixtral-8x7b")
    assert a.total / 1e9 == pytest.approx(46.7, rel=0.01) and a.active / 1e9 == pytest.approx(12.9, rel=0.01)
    # by hand: 32 layers x 8 experts x 3 matrices of 4096 x 14336
    assert a.parts["experts"] == 32 * 8 * 3 * 4096 * 14336
    assert a.parts["router"] == 32 * 8 * 4096 and a.experts_per_token == 2


def test_llama_2_7b_parts_by_hand():
    a = anatomy("llama-2-7b")
    assert a.parts["embeddings"] == a.parts["head"] == 32000 * 4096 and not a.tied_head
    assert a.parts["attention"] == 32 * 4 * 4096 * 4096
    assert a.parts["MLP"] == 32 * 3 * 4096 * 11008
    assert a.parts["norms"] == (2 * 32 + 1) * 4096
    assert a.block_parameters == 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096


def test_tied_heads_count_once_and_kinds_of_attention():
    gpt2, falcon, mistral = anatomy("gpt2"), anatomy("falcon-7b"), anatomy("mistral-7b")
    assert gpt2.tied_head and gpt2.parts["head"] == 0 and gpt2.positions == "learned"
    assert (gpt2.attention_kind, falcon.attention_kind, mistral.attention_kind) == ("MHA", "MQA", "GQA")
    assert mistral.sliding_window == 4096 and anatomy("t5-base").positions.startswith("relative")


def test_memory_arithmetic_by_hand():
    a = anatomy("llama-2-70b")
    assert weight_bytes(a, "bfloat16") == 2 * a.total and weight_bytes(a, "int4") == a.total / 2
    per_token = 2 * 80 * 8 * 128 * 2  # keys and values x layers x kv heads x head size x bf16 bytes
    assert kv_cache_bytes(a) == per_token == 327_680
    assert kv_cache_bytes(a, 4096) == 4096 * per_token
    assert kv_cache_bytes(a, kv_heads=a.heads) == 8 * per_token  # GQA: 8x smaller than full multi-head
    mistral = anatomy("mistral-7b")
    assert kv_cache_bytes(mistral, 32768) == kv_cache_bytes(mistral, 4096)  # the window caps the cache
    assert kv_cache_bytes(anatomy("bert-base"), 100) == 0


def test_memory_plan_streams_what_does_not_fit():
    small = memory_plan(anatomy("llama-2-7b"), gpu_gib=24)
    assert small.fits and small.streamed_blocks == 0
    big = memory_plan(anatomy("llama-2-70b"), gpu_gib=24, context=4096)
    block = anatomy("llama-2-70b").block_parameters * 2
    assert not big.fits and big.resident_blocks + big.streamed_blocks == 80
    assert big.streamed_bytes_per_pass == big.streamed_blocks * block
    assert not memory_plan(anatomy("llama-2-70b"), gpu_gib=141, dtype="bfloat16").fits  # 128.5 GiB + cache + 10 %
    assert memory_plan(anatomy("llama-2-70b"), gpu_gib=141, dtype="int8").fits


def test_unknown_names_and_broken_configs_get_clear_errors(tmp_path):
    with pytest.raises(UnknownModelError, match="Did you mean 'llama-2-7b'.*shipped name"):
        anatomy("llama-2-7")
    broken = json.loads((ARCHITECTURES / "llama-2-7b.json").read_text())
    broken["num_attention_heads"] = 31  # 4096 is not divisible by 31
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(LLMInspectError, match=r"broken.json.*hidden size \(4096\) is not a multiple .* heads \(31\)"):
        anatomy(tmp_path / "broken.json")
    broken["num_attention_heads"], broken["hidden_act"] = 32, "wiggle"  # no such activation function
    (tmp_path / "wiggly.json").write_text(json.dumps(broken))
    with pytest.raises(LLMInspectError, match="cannot build 'wiggly'.*wiggle.*wiggly.json"):
        anatomy(tmp_path / "wiggly.json")
    (tmp_path / "alien.json").write_text(json.dumps({"model_type": "no-such-model"}))
    with pytest.raises(LLMInspectError, match="cannot read the config alien.json.*no-such-model"):
        anatomy(tmp_path / "alien.json")
    assert part_of("encoder.conv1.weight") == "embeddings"


def test_router_choices_equal_the_models_own_router(decoder):
    moe = li.Inspector(tiny_mixtral(decoder.tokenizer), decoder.tokenizer, name="tiny Mixtral")
    seen = []
    hooks = [
        layer.mlp.gate.register_forward_hook(lambda m, a, out: seen.append(out)) for layer in moe.model.model.layers
    ]
    routes = moe.routing("The quick brown fox jumps over the lazy dog")
    for hook in hooks:
        hook.remove()
    for layer, (logits, scores, indices) in enumerate(seen):
        torch.testing.assert_close(routes.logits[layer], logits.float())
        assert routes.chosen[layer].tolist() == indices.tolist()
        torch.testing.assert_close(routes.weights[layer], scores.float())
    load = routes.load()
    assert load.shape == (2, 8) and torch.allclose(load.sum(-1), torch.ones(2))
    counts = torch.bincount(routes.chosen[0].flatten(), minlength=8).float()
    torch.testing.assert_close(load[0], counts / counts.sum())
    mixing = routes.mixing()
    assert ((mixing > 0).sum(-1) == 2).all() and torch.allclose(mixing.sum(-1), torch.ones(2, len(routes.tokens)))


def test_route_refuses_models_without_experts(decoder):
    with pytest.raises(li.LLMInspectError, match="no mixture of experts"):
        decoder.routing("hello")


def test_sliding_window_reach_grows_by_window_minus_one_per_layer():
    from llminspect.analysis.long_context import window_reach
    from llminspect.analysis.masks import sliding_window_mask

    window, n = 4, 40
    step = sliding_window_mask(n, window).double()
    reach = torch.eye(n, dtype=torch.float64)
    for layers in range(1, 6):  # who can reach the last token after `layers` layers: boolean mask products
        reach = step @ reach
        furthest = n - 1 - int(reach[n - 1].nonzero().min())
        assert furthest == window_reach(window, layers) == layers * (window - 1)
    assert window_reach(4096, 32) == 131040


def test_rope_scaling_is_transformers_own():
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from llminspect.analysis.long_context import rope_scaling

    linear = rope_scaling("linear", factor=8.0)
    torch.testing.assert_close(linear.wavelengths_scaled, linear.wavelengths * 8)  # position interpolation: ÷ 8
    llama3 = rope_scaling("llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=8192)  # fmt: skip
    ratio = llama3.wavelengths_scaled / llama3.wavelengths
    assert ratio[0] == pytest.approx(1.0) and ratio[-1] == pytest.approx(8.0)  # fast pairs kept, slow ones ×8
    assert "llama3" in ROPE_INIT_FUNCTIONS
    assert li.views.anatomy.rope_scaling([linear, llama3]).data[2].y == tuple(llama3.wavelengths_scaled.tolist())
