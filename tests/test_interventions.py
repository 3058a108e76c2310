"""Switching heads off and patching activations equal the same edits written as plain torch.

Zero ablation of a head is the same as zeroing that head's columns of the output projection's
weight; mean ablation the same as a bias of W_head · mean(weights · v), with the mean computed
here from the traced attention weights and the value projection; patching the same as a block
replaced by a wrapper that writes the clean vector into its output. Each reference is a separate
forward pass, so the comparison allows float32 rounding.
"""

from __future__ import annotations

import math

import pytest
import torch
from plain_torch import PatchedBlock

from llminspect.errors import FamilyError, InputError

PROMPT, CORRUPT, ANSWER = "The capital of France is", "The capital of Italy is", " Paris"
FLOAT32 = {"atol": 1e-4, "rtol": 1e-4}


def last_log_probs(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1].double().log_softmax(-1)


def ids_of(m, text):
    return torch.tensor([m.tokenizer(text).input_ids])


class EditedProjection(torch.nn.Module):
    """o_proj with some heads' columns zeroed and an optional constant added: plain weights, no hooks."""

    def __init__(self, linear, heads: list[int], width: int, means: torch.Tensor | None = None):
        super().__init__()
        weight = linear.weight.detach().clone()
        bias = torch.zeros(weight.shape[0])
        for head in heads:
            part = slice(head * width, (head + 1) * width)
            if means is not None:
                bias += weight[:, part] @ means[part]
            weight[:, part] = 0
        self.weight, self.bias = weight, bias

    def forward(self, x):
        return x @ self.weight.T + self.bias


def with_projection(m, layer: int, replacement):
    attention = m.model.model.layers[layer].self_attn
    original, attention.o_proj = attention.o_proj, replacement
    return attention, original


def test_zero_ablation_equals_zeroed_output_weights(decoder):
    m, heads = decoder, [(4, 2), (4, 7)]
    result = m.ablation(PROMPT, ANSWER, heads)
    paris = m.tokenizer(ANSWER).input_ids[0]
    width = m.config.hidden_size // m.config.num_attention_heads
    edited = EditedProjection(m.model.model.layers[4].self_attn.o_proj, [2, 7], width)
    attention, original = with_projection(m, 4, edited)
    try:
        reference = last_log_probs(m.model, ids_of(m, PROMPT))
    finally:
        attention.o_proj = original
    assert result.p_after == pytest.approx(math.exp(reference[paris]), rel=1e-4)
    assert result.p_before == pytest.approx(math.exp(last_log_probs(m.model, ids_of(m, PROMPT))[paris]), rel=1e-4)
    assert result.after.ids[0] == int(reference.argmax())
    assert result.p_after != pytest.approx(result.p_before, rel=1e-3)  # the heads did something


def test_mean_ablation_equals_a_constant_from_weights_times_values(decoder):
    m, layer, head = decoder, 23, 4
    config = m.config
    width = config.hidden_size // config.num_attention_heads
    group = config.num_attention_heads // config.num_key_value_heads
    trace = m.trace(PROMPT)
    block = m.model.model.layers[layer]
    with torch.no_grad():  # v from the layer's input; the traced weights mix it: each head's weights · v
        v = block.self_attn.v_proj(block.input_layernorm(trace.hidden_states[layer][None]))[0]
    v = v.view(v.shape[0], config.num_key_value_heads, width).transpose(0, 1)  # [kv heads, tokens, width]
    weights = trace.attentions[layer].float()
    per_head = torch.stack([weights[h] @ v[h // group] for h in range(config.num_attention_heads)])
    means = per_head.transpose(0, 1).reshape(v.shape[1], -1).mean(0)  # heads joined, averaged over positions
    result = m.ablation(PROMPT, ANSWER, [(layer, head)], how="mean")
    attention, original = with_projection(m, layer, EditedProjection(block.self_attn.o_proj, [head], width, means))
    try:
        reference = last_log_probs(m.model, ids_of(m, PROMPT))
    finally:
        attention.o_proj = original
    paris = m.tokenizer(ANSWER).input_ids[0]
    assert result.how == "mean"
    assert result.p_after == pytest.approx(math.exp(reference[paris]), rel=1e-3)


def test_every_head_alone_matches_one_ablation_at_a_time(decoder):
    effects = decoder.head_effects(PROMPT, ANSWER)
    assert effects.change.shape == (30, 9)
    layer, head, change = effects.strongest(1)[0]
    single = decoder.ablation(PROMPT, ANSWER, [(layer, head)])
    assert change == pytest.approx(math.log(single.p_after) - math.log(single.p_before), abs=1e-4)
    assert effects.p_answer == pytest.approx(single.p_before, rel=1e-6)
    assert change < -0.5  # some head matters for Paris: removing it alone costs more than a third of p
    assert bool((effects.change.abs() < 0.05).float().mean() > 0.5)  # ... while most heads barely matter


@pytest.fixture(scope="module")
def patched(decoder):
    return decoder.patching(PROMPT, CORRUPT, ANSWER)


def test_patching_equals_a_block_that_writes_the_clean_vector(decoder, patched):
    m, result = decoder, patched
    paris = m.tokenizer(ANSWER).input_ids[0]
    layers = m.model.model.layers
    with torch.no_grad():  # the clean stream after each block, from the model's own hidden states
        clean = m.model(input_ids=ids_of(m, PROMPT), output_hidden_states=True).hidden_states
    for layer, position in [(5, 3), (20, 4), (12, 0)]:
        original = layers[layer]
        layers[layer] = PatchedBlock(original, position, clean[layer + 1][0, position])
        try:
            expected = math.exp(last_log_probs(m.model, ids_of(m, CORRUPT))[paris])
        finally:
            layers[layer] = original
        assert result.p_patched[layer, position] == pytest.approx(expected, rel=1e-3, abs=1e-7)
    assert result.p_clean == pytest.approx(0.77, abs=0.01) and result.p_corrupt < 0.01
    assert float(result.restored[-1, -1]) == pytest.approx(1.0, abs=1e-4)  # the last vector decides the logits
    assert float(result.restored[:8, 3].min()) > 0.9  # early on, France lives at its own position ...
    assert float(result.restored[-6:, 3].max()) < 0.1  # ... late, no longer there ...
    assert float(result.restored[-6:, 4].min()) > 0.9  # ... but at "is", where the answer is read


def test_heads_off_is_undone_after_the_block(decoder):
    before = decoder.trace(PROMPT).logits
    with decoder.heads_off([(0, 4), (23, 4)]):
        during = decoder.trace(PROMPT).logits
    after = decoder.trace(PROMPT).logits
    assert torch.equal(before, after)
    assert not torch.allclose(before, during, **FLOAT32)


def test_clear_errors(decoder, encoder):
    with pytest.raises(InputError, match="same number of tokens"):
        decoder.patching(PROMPT, "The capital of the United Kingdom is", ANSWER)
    with pytest.raises(InputError, match="layer=30: .* has layers 0 to 29"):
        decoder.ablation(PROMPT, ANSWER, [(30, 0)])
    with pytest.raises(InputError, match="'zero' or to its 'mean'"):
        decoder.ablation(PROMPT, ANSWER, [(0, 0)], how="half")
    with pytest.raises(InputError, match="reference="):
        decoder.heads_off([(0, 0)], how="mean")
    with pytest.raises(InputError, match="tokens here"):
        decoder.ablation(PROMPT, " Parisian capital", [(0, 0)])
    with pytest.raises(FamilyError):
        encoder.ablation("The capital of France is Paris.", " Paris", [(0, 0)])


def test_encoder_heads_off_changes_its_vectors_and_restores_them(encoder):
    stack = encoder.sites().architecture.writer
    assert (stack.layers, stack.heads) == (6, 12)
    text = "The animal didn't cross the street because it was too tired."
    before = encoder.trace(text).hidden_states
    with encoder.heads_off([(2, 3)]):
        during = encoder.trace(text).hidden_states
    torch.testing.assert_close(during[:3], before[:3])  # blocks before layer 2 do not see the change
    assert not torch.allclose(during[3], before[3], **FLOAT32)
    assert torch.equal(encoder.trace(text).hidden_states, before)


def test_blocks_restoring_reads_the_restored_share(patched):
    result = patched
    assert result.blocks_restoring(3) == [b for b in range(30) if result.restored[b, 3] >= 0.9]
    assert result.blocks_restoring(3) == list(range(23)) and result.blocks_restoring(4) == list(range(23, 30))
