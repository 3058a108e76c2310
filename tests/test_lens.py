"""Logit lens, rotary positions and the residual stream, each against torch math written here."""

from __future__ import annotations

import math

import pytest
import torch

from llminspect.analysis.residual import residual_stream
from llminspect.errors import FamilyError, InputError

PROMPT = "The capital of France is"


def test_logit_lens_equals_rms_norm_and_tied_unembedding_by_hand(decoder):
    lens = decoder.logit_lens(PROMPT, answer=" Paris")
    ids = torch.tensor([decoder.tokenize(PROMPT).ids])
    with torch.no_grad():
        out = decoder.model(ids, output_hidden_states=True)
    norm = decoder.model.model.norm
    unembedding = decoder.model.model.embed_tokens.weight  # SmolLM2 ties its head to its embeddings
    paris = decoder.tokenizer(" Paris", add_special_tokens=False).input_ids[0]
    for layer in (0, 10, 29):
        h = out.hidden_states[layer][0]
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon) * norm.weight
        logits = h @ unembedding.T
        probs = logits.softmax(-1)
        torch.testing.assert_close(lens.top_probs[layer], probs.max(-1).values, atol=1e-4, rtol=1e-3)
        assert lens.top_ids[layer].tolist() == probs.argmax(-1).tolist()
        entropy = torch.distributions.Categorical(logits=logits).entropy() / math.log(2)
        torch.testing.assert_close(lens.entropy[layer], entropy, atol=1e-3, rtol=1e-3)
        ranks = (logits.argsort(-1, descending=True) == paris).nonzero()[:, 1] + 1  # probs underflow to ties
        assert lens.answer_rank[layer].tolist() == ranks.tolist()
    # the last row is the model's own output: its top token at the end is the real prediction
    assert lens.top_ids[-1, -1] == out.logits[0, -1].argmax()
    torch.testing.assert_close(lens.answer_prob[-1], out.logits[0].softmax(-1)[:, paris], atol=1e-5, rtol=1e-4)
    assert lens.answer == "␣Paris" and lens.answer_rank[-1, -1] == 1
    assert len(lens.layers) == decoder.config.num_hidden_layers + 1 and lens.layers[0] == "embeddings"


def test_a_long_text_is_read_in_several_passes_with_the_same_result(decoder, monkeypatch):
    import llminspect.analysis.lens

    whole = decoder.logit_lens(PROMPT, answer=" Paris")
    monkeypatch.setattr(llminspect.analysis.lens, "LOGIT_BUDGET_BYTES", 4 * 5 * 49152 * 7)  # 7 layers a pass: 5 passes
    passes = []
    original = llminspect.analysis.lens.every_layer_logits
    monkeypatch.setattr(llminspect.analysis.lens, "every_layer_logits", lambda *a: passes.append(1) or original(*a))
    chunked = decoder.logit_lens(PROMPT, answer=" Paris")
    assert len(passes) == 5
    assert chunked.top_ids.tolist() == whole.top_ids.tolist() and chunked.layers == whole.layers
    torch.testing.assert_close(chunked.top_probs, whole.top_probs, atol=1e-5, rtol=1e-4)
    assert chunked.answer_rank.tolist() == whole.answer_rank.tolist()


def test_logit_lens_reads_an_encoder_decoders_decoder(toy):
    lens = toy.logit_lens("happy bird eats mouse")
    assert lens.tokens.strings == ["<s>", "birdo", "gaja", "manghas", "muso", "</s>"]
    assert lens.top_tokens[-1][:5] == ["birdo", "gaja", "manghas", "muso", "</s>"]  # the model's own output, shifted
    assert lens.answer == "</s>"  # default: the final top guess at the last position


def test_logit_lens_refuses_what_it_cannot_read(encoder, decoder):
    with pytest.raises(FamilyError, match="without a language-model head"):
        encoder.logit_lens(PROMPT)
    with pytest.raises(InputError, match="tokens here"):
        decoder.logit_lens(PROMPT, answer=" Parisiennes of old")


def rotate(vectors: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Textbook RoPE on the rotate_half layout: pair (x_i, x_{i+d/2}) turned by its angle."""
    half = vectors.shape[-1] // 2
    x, y = vectors[:, :half], vectors[:, half:]
    return torch.cat([x * angles.cos() - y * angles.sin(), x * angles.sin() + y * angles.cos()], dim=-1)


def test_rotary_turns_each_pair_by_position_times_frequency(decoder):
    rope = decoder.rotary("The quick brown fox jumps over the lazy dog", layer=3, head=4)
    theta = decoder.config.rope_parameters["rope_theta"] if hasattr(decoder.config, "rope_parameters") else 10000.0
    width = rope.query_before.shape[-1]
    expected = 1.0 / theta ** (torch.arange(0, width, 2, dtype=torch.float32) / width)
    torch.testing.assert_close(rope.frequencies, expected)
    torch.testing.assert_close(rope.query_after, rotate(rope.query_before, rope.angles), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(rope.key_after, rotate(rope.key_before, rope.angles), atol=1e-4, rtol=1e-4)
    before, after = rope.pair(5)
    torch.testing.assert_close(before.norm(dim=-1), after.norm(dim=-1), atol=1e-4, rtol=1e-4)  # a turn, not a stretch


def test_rotated_scores_depend_on_distance_only(decoder):
    rope = decoder.rotary("The quick brown fox", layer=0)
    q, k = rope.query_before[1:2], rope.key_before[2:3]
    frequencies = rope.frequencies

    def score(i, j):
        return float(rotate(q, i * frequencies[None]) @ rotate(k, j * frequencies[None]).T)

    assert score(3, 1) == pytest.approx(score(40, 38), rel=1e-4)
    assert score(3, 1) != pytest.approx(score(3, 2), rel=1e-3)


def test_rotary_is_only_for_models_that_have_it(encoder):
    with pytest.raises(FamilyError, match="no rotary"):
        encoder.rotary("The quick brown fox")


def test_residual_stream_by_hand_and_by_hooks_agree(decoder):
    text = "The quick brown fox"
    by_hand = residual_stream(decoder.walk(text, how="by hand"))
    hooked = residual_stream(decoder.walk(text))
    layers = decoder.config.num_hidden_layers
    assert len(by_hand.added_labels) == 2 * layers
    assert by_hand.added_labels[:2] == ["layer 0 · attention", "layer 0 · MLP"]
    walk = decoder.walk(text, how="by hand")
    torch.testing.assert_close(by_hand.added_norm[0], walk["layer 0 · self-attention"].output.norm(dim=-1))
    # a hooked walk sees whole blocks: attention + MLP of each layer, the same vectors summed
    assert hooked.added_labels[0] == "layer 0 · whole block" and len(hooked.added_labels) == layers
    adds = [s.added for s in walk.find(kind="residual")]
    for layer in (0, 1, layers - 1):
        block = (adds[2 * layer] + adds[2 * layer + 1]).norm(dim=-1)
        torch.testing.assert_close(hooked.added_norm[layer], block, atol=1e-4, rtol=1e-4)
    assert by_hand.stream_labels[0] == "embeddings" and by_hand.tokens == decoder.tokenize(text).labels
