"""The site layer: named places inside a model, and one run that keeps and edits them.

What a run keeps is compared with plain transformers (hidden states, attention maps, logits of a
separate forward pass, so float32 tolerances); an edit that zeroes a head is compared with the
same model whose output-projection columns for that head are zero; the queries and keys the
``attention.q`` / ``attention.k`` sites see must rebuild the model's own attention map. The zoo
(tests/test_zoo.py, column "run") repeats the first check on 32 architectures.
"""

from __future__ import annotations

import math

import pytest
import torch

from llminspect.analysis.sites import run, sites_of
from llminspect.errors import FamilyError, InputError

PROMPT = "The capital of France is"
FLOAT32 = {"atol": 1e-4, "rtol": 1e-4}


def plain(m, inputs, **options):
    with torch.no_grad():
        return m.model(**inputs.tensors, use_cache=False, **options)


def test_a_decoders_sites_are_named_in_forward_order(decoder):
    names = list(decoder.sites())
    assert names[:7] == ["embeddings", "layer.0.input", "layer.0.attention.q", "layer.0.attention.k",
                         "layer.0.attention.heads", "layer.0.attention.output", "layer.0.mlp.output"]  # fmt: skip
    assert names[-3:] == ["layer.29.output", "final_norm", "logits"]
    assert len(names) == 1 + 30 * 7 + 2
    assert repr(decoder.sites()).startswith("213 sites: embeddings, layer.L.input (L = 0–29), layer.L.attention.q")
    assert decoder.sites()["layer.3.attention.heads"].path == "model.layers.3.self_attn.o_proj"
    rows = decoder.sites().table()
    assert rows[0] == {"site": "embeddings", "holds": "the stream entering the first block", "module": "model.layers.0",
                       "reads": "input"}  # fmt: skip


def test_an_encoder_decoder_names_both_stacks_and_cross_attention(toy):
    names = list(toy.sites())
    assert names[0] == "encoder.embeddings" and "decoder.layer.1.cross_attention.heads" in names
    assert "encoder.layer.1.cross_attention.heads" not in names  # the encoder has none
    assert "decoder.final_norm" not in names  # BART's layernorm_embedding comes before the blocks
    arch = toy.sites().architecture
    assert [s.name for s in arch.stacks] == ["encoder", "decoder"] and arch.writer.name == "decoder"


def test_run_keeps_what_transformers_returns(decoder, encoder, toy):
    for m, text in ((decoder, PROMPT), (encoder, "The quick brown fox"), (toy, "happy bird eats mouse")):
        stack = m.sites().architecture.writer
        prefix = f"{stack.name}." if stack.name else ""
        keep = [f"{prefix}embeddings", f"{prefix}layer.*.output"] + (["logits"] if m.has_lm_head else [])
        inputs = m.inputs(text)
        cache = run(m, inputs, keep=keep)
        out = plain(m, inputs, output_hidden_states=True)
        hidden = out.decoder_hidden_states if m.family == "encoder-decoder" else out.hidden_states
        torch.testing.assert_close(cache[f"{prefix}embeddings"], hidden[0], **FLOAT32)
        for layer in range(stack.layers - 1):  # the last hidden state is after the final norm, where there is one
            torch.testing.assert_close(cache[f"{prefix}layer.{layer}.output"], hidden[layer + 1], **FLOAT32)
        if getattr(out, "logits", None) is not None:
            torch.testing.assert_close(cache.logits, out.logits, **FLOAT32)
        assert list(cache)[0] == f"{prefix}embeddings" and len(cache) == len(keep) - 2 + 1 + stack.layers


def test_the_final_norm_is_transformers_last_hidden_state(decoder):
    inputs = decoder.inputs(PROMPT)
    cache = decoder.run(PROMPT, keep=["final_norm", "layer.29.output"])
    last = plain(decoder, inputs, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(cache["final_norm"], last, **FLOAT32)
    assert not torch.allclose(cache["layer.29.output"], last, **FLOAT32)


def test_a_run_with_attentions_hands_back_the_models_own(whisper):
    from llminspect.models.registry import sample_audio

    cache = whisper.run(sample_audio("quick_brown_fox"), "The quick brown fox", keep=["decoder.layer.0.output"],
                        output_attentions=True)  # fmt: skip
    assert len(cache.output.cross_attentions) == 4 and cache["decoder.layer.0.output"].shape[-1] == 384


def test_zeroing_a_head_equals_zeroed_output_projection_columns(decoder):
    m, layer, head, width = decoder, 23, 4, 64

    def off(heads):
        heads[:, :, head] = 0
        return heads

    site = f"layer.{layer}.attention.heads"
    edited = m.run(PROMPT, keep=["logits", site], edit={site: off})
    assert float(edited[site][0, :, head].abs().max()) == 0.0  # the kept value is edited
    projection = m.model.model.layers[layer].self_attn.o_proj
    saved = projection.weight.detach().clone()
    try:
        with torch.no_grad():
            projection.weight[:, head * width : (head + 1) * width] = 0
        reference = plain(m, m.inputs(PROMPT)).logits
    finally:
        with torch.no_grad():
            projection.weight.copy_(saved)
    torch.testing.assert_close(edited.logits, reference, **FLOAT32)
    assert not torch.allclose(edited.logits, plain(m, m.inputs(PROMPT)).logits, **FLOAT32)  # the head mattered


def test_queries_and_keys_rebuild_the_models_attention_map(decoder):
    cache = decoder.run(PROMPT, keep=["layer.3.attention.q", "layer.3.attention.k"], output_attentions=True)
    q, k = cache["layer.3.attention.q"], cache["layer.3.attention.k"]
    assert q.shape == k.shape == (1, 9, 5, 64)  # keys already repeated for each of the 9 query heads
    scores = q @ k.transpose(-1, -2) / math.sqrt(64)
    scores = scores.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(scores.softmax(-1), cache.output.attentions[3], **FLOAT32)


def test_edits_and_keeps_take_patterns_and_hooks_never_stay(decoder):
    cache = decoder.run(PROMPT, keep=["layer.1?.output"])
    assert list(cache) == [f"layer.{i}.output" for i in range(10, 20)]
    before = decoder.trace(PROMPT).logits

    def hooks():  # transformers keeps hooks of its own for output_hidden_states: compare, do not count
        return {(name, key) for name, module in decoder.model.named_modules()
                for key in [*module._forward_hooks, *module._forward_pre_hooks]}  # fmt: skip

    def broken(hidden):
        raise RuntimeError("a learner's bug")

    there = hooks()
    for site in ("layer.5.output", "layer.5.input"):
        with pytest.raises(RuntimeError, match="a learner's bug"):
            decoder.run(PROMPT, keep=["layer.5.attention.q"], edit={site: broken})
    assert hooks() == there
    assert not torch.overrides._get_current_function_mode_stack()  # the q·kᵀ watcher left no mode behind
    assert torch.equal(decoder.trace(PROMPT).logits, before)


def test_a_site_that_does_not_exist_or_cannot_be_edited_is_named(decoder):
    with pytest.raises(InputError, match="No site is called 'layer.3.outptu'.*Did you mean 'layer.3.output'"):
        decoder.run(PROMPT, keep=["layer.3.outptu"])
    with pytest.raises(InputError, match="logits is read only"):
        decoder.run(PROMPT, edit={"logits": lambda x: x})
    with pytest.raises(InputError, match="read only"):
        decoder.run(PROMPT, edit={"layer.2.attention.q": lambda x: x})
    with pytest.raises(InputError, match="'layer.4.output' was not kept"):
        decoder.run(PROMPT, keep=["layer.3.output"])["layer.4.output"]


def test_layer_and_head_indices_are_checked_in_one_place_with_one_message(decoder, toy):
    from llminspect.analysis.sites import check_head, check_layer

    with pytest.raises(InputError, match=r"^layer=30: decoder has layers 0 to 29\.$"):
        check_layer(decoder, 30)
    with pytest.raises(InputError, match=r"^head=-1: decoder has heads 0 to 8 in each layer\.$"):
        check_head(decoder, -1)
    with pytest.raises(InputError, match="layer=1.5: pass a whole number"):
        check_layer(decoder, 1.5)
    with pytest.raises(InputError, match="layer=2: toy-seq2seq has encoder layers 0 to 1"):
        check_layer(toy, 2, stack="encoder")
    with pytest.raises(InputError, match="stack='middle'"):
        check_layer(toy, 0, stack="middle")
    for call in (lambda: decoder.rotary(PROMPT, layer=31), lambda: decoder.open_block(PROMPT, layer=31),
                 lambda: decoder.journey(PROMPT, layer=31), lambda: decoder.ablation(PROMPT, " Paris", [(31, 0)])):
        with pytest.raises(InputError, match=r"^layer=31: decoder has layers 0 to 29\.$"):
            call()  # fmt: skip


def test_a_shared_block_names_no_single_place(tiny):
    import llminspect as li

    albert = li.load(str(tiny("albert")), device="cpu")
    with pytest.raises(FamilyError, match="shared block"):
        albert.run("happy bird", keep=["layer.0.output"])


def test_sites_are_resolved_once_per_model(decoder):
    assert sites_of(decoder) is sites_of(decoder) and decoder.sites() is sites_of(decoder)
