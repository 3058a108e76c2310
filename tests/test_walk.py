"""The walk, by hooks and by hand, ends where the model's own forward pass ends.

Like minGPT's test against Hugging Face: the reference is the transformers model called
directly (``model(**inputs)``), never llminspect's trace.
"""

from __future__ import annotations

import pytest
import torch

import llminspect as li
from llminspect.analysis.by_hand import walk_by_hand
from llminspect.analysis.by_hand.recorder import decoder_mask
from llminspect.errors import FamilyError, InputError
from llminspect.models.registry import sample_audio
from llminspect.models.structure import block_lists, kind_of

CLOSE = {"atol": 2e-5, "rtol": 1e-4}
TEXT = "The quick brown fox jumps over the lazy dog"


def raw_forward(m, source, target=None):
    """The model's own forward pass on the inputs llminspect would feed it."""
    if m.family == "encoder-decoder":
        inputs = m.inputs(source, target).tensors
    else:
        inputs = {"input_ids": torch.tensor([m.tokenize(source).ids])}
    with torch.no_grad():
        return m.model(**inputs, output_hidden_states=True, use_cache=False)


def cases(encoder, decoder, toy, whisper):
    return [(encoder, TEXT), (decoder, TEXT), (toy, "happy bird eats mouse"), (whisper, sample_audio("hello_world"))]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["by hand", "hooks"])
def test_walk_ends_on_the_forward_pass_hidden_state_and_logits(encoder, decoder, toy, whisper, how):
    for m, source in cases(encoder, decoder, toy, whisper):
        walk = m.walk(source, how=how)
        reference = raw_forward(m, source)
        last = reference.decoder_hidden_states[-1] if m.family == "encoder-decoder" else reference.hidden_states[-1]
        torch.testing.assert_close(walk.final_hidden_state, last[0], **CLOSE)
        if m.family == "encoder":
            assert walk.logits is None
        else:
            torch.testing.assert_close(walk.logits, reference.logits[0], **CLOSE)


def test_by_hand_llama_names_every_part_of_a_block_in_order(decoder):
    walk = decoder.walk(TEXT, how="by hand")
    assert [s.name.removeprefix("layer 0 · ") for s in walk.find(layer=0)] == [
        "input_layernorm",
        "q_proj", "k_proj", "v_proj", "q turned by RoPE", "k turned by RoPE", "scores q·kᵀ/√d",
        "attention weights: softmax(scores + mask)", "weights·v, heads joined",
        "self-attention",
        "residual add (attention)",
        "post_attention_layernorm",
        "mlp",
        "residual add (MLP)",
    ]  # fmt: skip
    tokens = len(decoder.tokenize(TEXT))
    assert walk["embed_tokens"].output_shape == (tokens, 576)
    assert walk["lm_head"].output_shape == (tokens, 49152)
    # the residual add is the stream plus exactly what attention returned
    add = walk["layer 0 · residual add (attention)"]
    torch.testing.assert_close(add.output, walk["embed_tokens"].output + walk["layer 0 · self-attention"].output)
    assert add.added is not None and add.stream


def test_the_written_out_attention_is_the_models_own(decoder):
    walk = decoder.walk(TEXT, how="by hand")
    with torch.no_grad():
        out = decoder.model(torch.tensor([decoder.tokenize(TEXT).ids]), output_attentions=True)
    for layer in (0, 17, 29):  # softmax(q·kᵀ/√d + mask), 9 heads, equal to what eager attention reports
        weights = walk[f"layer {layer} · attention weights: softmax(scores + mask)"].output
        torch.testing.assert_close(weights, out.attentions[layer][0], **CLOSE)
    scores = walk["layer 0 · scores q·kᵀ/√d"].output
    q, k = walk["layer 0 · q turned by RoPE"].output, walk["layer 0 · k turned by RoPE"].output
    assert q.shape == (9, len(decoder.tokenize(TEXT)), 64) and k.shape[0] == 3  # 9 query heads share 3 key/value heads
    torch.testing.assert_close(scores[4], q[4] @ k[4 // 3].T / 8.0, **CLOSE)  # head 4 reads key/value head 1


def test_hooked_blocks_carry_the_hidden_states_transformers_reports(decoder):
    walk = decoder.walk(TEXT)
    blocks = walk.find(kind="block")
    reference = raw_forward(decoder, TEXT).hidden_states
    assert len(blocks) == decoder.config.num_hidden_layers
    for layer, step in enumerate(blocks[:-1]):  # the last hidden state is reported after the final norm
        torch.testing.assert_close(step.output, reference[layer + 1][0], **CLOSE)
    assert [s.layer for s in walk if s.layer is not None] == sorted(s.layer for s in walk if s.layer is not None)


def test_the_mask_matters_a_walk_without_it_lets_tokens_see_the_future(decoder):
    layer = decoder.model.model.layers[0]
    walk = decoder.walk(TEXT, how="by hand")
    h = walk["layer 0 · input_layernorm"].output[None]
    positions = torch.arange(h.shape[1])[None]
    cos_sin = decoder.model.model.rotary_emb(h, position_ids=positions)
    with torch.no_grad():
        unmasked, _ = layer.self_attn(h, position_embeddings=cos_sin, attention_mask=None)
    masked = walk["layer 0 · self-attention"].output
    assert (unmasked[0, 0] - masked[0]).abs().max() > 1e-2  # the book's call: token 0 attends to the whole text
    torch.testing.assert_close(unmasked[0, -1], masked[-1], **CLOSE)  # the last token may see everything anyway


def test_causal_mask_with_a_sliding_window_keeps_w_keys():
    allowed = decoder_mask(5, torch.float32, "cpu", window=2)[0, 0].eq(0)
    assert allowed.sum(dim=1).tolist() == [1, 2, 2, 2, 2]
    assert allowed[4].tolist() == [False, False, False, True, True]


def test_by_hand_follows_a_sliding_window_model(tiny):
    model = li.load(tiny("mistral", sliding_window=3)).model
    ids = torch.randint(0, 100, (1, 12))
    steps, logits = walk_by_hand(model, {"input_ids": ids})
    with torch.no_grad():
        torch.testing.assert_close(logits, model(ids).logits[0], **CLOSE)
    assert steps[-1].name == "lm_head"
    model.config.sliding_window = None  # the same walk with a plain causal mask lands elsewhere
    _, without_window = walk_by_hand(model, {"input_ids": ids})
    assert (without_window[-1] - logits[-1]).abs().max() > 1e-3


def test_hooks_walk_any_architecture_and_by_hand_refuses_clearly(tiny):
    m = li.load(tiny("gpt2"))
    walk = m.walk(TEXT)
    names = [s.name for s in walk]
    assert names[:2] == ["wte", "wpe"] and names[-2:] == ["ln_f", "lm_head"]
    assert [s.name for s in walk.find(layer=0)] == [
        "layer 0 · ln_1", "layer 0 · attn", "layer 0 · ln_2", "layer 0 · mlp", "layer 0 · output (residual stream)"
    ]  # fmt: skip
    with torch.no_grad():
        expected = m.model(torch.tensor([m.tokenize(TEXT).ids])).logits[0]
    torch.testing.assert_close(walk.logits, expected)
    with pytest.raises(FamilyError, match="how='hooks'"):
        m.walk(TEXT, how="by hand")


def test_walk_finds_both_stacks_and_names_steps_after_them(toy):
    assert [name for name, _ in block_lists(toy.model)] == ["model.encoder.layers", "model.decoder.layers"]
    walk = toy.walk("happy bird eats mouse")
    assert walk[0].name == "encoder embed_tokens" and walk[0].module == "model.encoder.embed_tokens"
    decoder_embedding = walk.find(kind="embedding", stack="decoder")[0]
    assert decoder_embedding.module == "model.decoder.embed_tokens"  # the shared module, named by its caller
    assert {s.stack for s in walk.find(kind="cross-attention")} == {"decoder"}
    assert len(walk.find(kind="cross-attention")) == toy.config.decoder_layers


def test_walk_lookup_errors_and_labels(toy):
    walk = toy.walk("happy bird eats mouse", how="by hand")
    with pytest.raises(KeyError, match="No step named"):
        walk["nothing"]
    with pytest.raises(InputError, match="'hooks' or 'by hand'"):
        toy.walk("happy bird", how="magic")
    assert "->" in repr(walk[0])
    assert [kind_of(n) for n in ("self_attn", "fc1", "lm_head", "wpe", "ln_f", "pooler.dense")] == [
        "attention", "mlp", "head", "positions", "norm", "head"
    ]  # fmt: skip
