"""One block written out as arithmetic equals the model: each step against the model's own modules and trace."""

from __future__ import annotations

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

import llminspect as li
from llminspect.errors import FamilyError, InputError

TEXT = "The quick brown fox jumps over the lazy dog"


def test_every_step_equals_the_model(decoder):
    block = decoder.open_block(TEXT, layer=3, head=5)
    compared = [s.name for s in block.steps if s.difference is not None]
    assert compared == ["RMSNorm(x)", "attention weights", "attention output", "RMSNorm(x) again", "MLP output",
                        "x + MLP output"]  # fmt: skip
    assert block.largest_difference() < 1e-4
    assert block.kv_head == 1  # 9 query heads over 3 key/value heads: heads 3, 4, 5 share key/value head 1
    trace = decoder.trace(TEXT)  # a separate pass: float32 tolerance
    torch.testing.assert_close(block["attention weights"].value, trace.attentions[3, 5].float(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(block["x + MLP output"].value, trace.hidden_states[4], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(block["block input x"].value, trace.hidden_states[3])


def test_rope_by_hand_equals_transformers_rotary(decoder):
    block = decoder.open_block(TEXT, layer=0, head=2)
    q = block["q of head 2"].value
    tokens = q.shape[0]
    cos, sin = decoder.model.model.rotary_emb(q[None], position_ids=torch.arange(tokens)[None])
    turned, _ = apply_rotary_pos_emb(q[None, None], q[None, None], cos, sin)
    torch.testing.assert_close(block["q turned by RoPE"].value, turned[0, 0], atol=1e-5, rtol=1e-5)
    scores = block["scores"].value
    assert torch.isinf(scores.triu(1)[scores.triu(1) != 0]).all()  # causal: -inf above the diagonal


def test_view_escapes_and_shows_the_gaps(decoder):
    view = li.views.opened_block(decoder.open_block("a <b>bold</b> fox", layer=1, head=0))
    assert "<b>bold" not in view.body and "largest gap" in view.body


@pytest.mark.parametrize("name", ["llama", "mistral", "qwen2"])
def test_tiny_llama_style_models_open(tiny, name):
    m = li.load(str(tiny(name)), device="cpu")
    block = m.open_block("happy bird eats", layer=1, head=3)
    assert block.largest_difference() < 1e-4


@pytest.mark.parametrize("name", ["gemma", "gpt2", "bert"])
def test_other_blocks_are_refused(tiny, name):
    m = li.load(str(tiny(name)), device="cpu")
    with pytest.raises(FamilyError):
        m.open_block("happy bird eats", layer=1, head=0)


def test_bad_layer_or_head(decoder):
    with pytest.raises(InputError, match="layer=30: decoder has layers 0 to 29"):
        decoder.open_block(TEXT, layer=30)
    with pytest.raises(InputError, match="head=9: decoder has heads 0 to 8"):
        decoder.open_block(TEXT, head=9)
