"""Induction heads and direct logit attribution against plain torch on the embedded decoder's own weights.

Every number ``m.induction``, ``m.induction_ablation`` and ``m.logit_attribution`` give is computed again here
without llminspect's sites: attention maps from one ordinary ``model(...)`` call, heads switched off by
editing the output projection's weights, and the attribution by hand from the output projection's
columns, the final RMSNorm's weight and the LM head's rows, read with plain forward hooks of this test.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import llminspect as li
from llminspect.analysis import circuits
from llminspect.analysis.circuits import induction_scores, previous_token_scores


def test_induction_scores_are_the_weight_on_the_token_after_the_earlier_copy():
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(3, 2, 10, 10, generator=generator).softmax(-1)
    by_loop = torch.zeros(3, 2)
    for layer in range(3):
        for head in range(2):
            by_loop[layer, head] = sum(maps[layer, head, t, t - 5 + 1] for t in range(5, 10)) / 5
    torch.testing.assert_close(induction_scores(maps, 5), by_loop)
    before = sum(maps[..., t, t - 1] for t in range(1, 10)) / 9
    torch.testing.assert_close(previous_token_scores(maps), before)
    with pytest.raises(li.LLMInspectError, match="period < tokens"):
        induction_scores(maps, 10)


def test_the_repeat_and_its_refusals(decoder, encoder):
    ids = circuits.random_repeat(decoder, 7, seed=3)
    assert ids[:7] == ids[7:] and not set(ids) & set(decoder.tokenizer.all_special_ids)
    assert ids == circuits.random_repeat(decoder, 7, seed=3) != circuits.random_repeat(decoder, 7, seed=4)
    with pytest.raises(li.LLMInspectError, match="length=500"):
        decoder.induction(length=500)
    with pytest.raises(li.LLMInspectError, match="decoder models"):
        encoder.induction(length=5)
    with pytest.raises(li.LLMInspectError, match="decoder models"):
        encoder.logit_attribution("The capital of France is", " Paris", " Rome")


@pytest.fixture(scope="module")
def found(decoder):
    return decoder.induction(length=40, seed=0)  # lesson 09's sequence


def plain_losses(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    return torch.tensor([float("nan")] + [-float(logits[t - 1].log_softmax(-1)[ids[t]]) for t in range(1, len(ids))],
                        dtype=torch.float64)


def test_induction_equals_one_plain_forward_pass(decoder, found):
    with torch.no_grad():
        out = decoder.model(input_ids=torch.tensor([found.ids]), output_attentions=True)
    maps = torch.stack([a[0] for a in out.attentions])
    period = 40
    expected = torch.stack([maps[:, :, t, t - period + 1] for t in range(period, 2 * period)]).mean(0)
    torch.testing.assert_close(found.induction, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(found.losses[1:], plain_losses(decoder.model, found.ids)[1:], atol=1e-3, rtol=1e-4)
    assert found.loss("second") == pytest.approx(float(found.losses[41:80].mean()))
    assert found.top_heads(3) == [(18, 6), (17, 3), (17, 4)] and found.top_heads(1, "previous_token") == [(16, 0)]


@contextlib.contextmanager
def heads_replaced(model, heads: list[tuple[int, int]], means: dict | None = None):
    """The output projection's columns of ``heads`` zeroed; with ``means`` ((layer, head) -> mean head output),
    a bias W_O[:, head] · mean added instead — exactly what a head giving its mean output contributes."""
    saved = []
    width = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for layer, head in heads:
            projection = model.model.layers[layer].self_attn.o_proj
            saved.append((projection, projection.weight.clone(), projection.bias))
            columns = slice(head * width, (head + 1) * width)
            if means is not None:
                added = projection.weight[:, columns] @ means[(layer, head)]
                projection.bias = torch.nn.Parameter(added if projection.bias is None else projection.bias + added)
            projection.weight[:, columns] = 0
    try:
        yield
    finally:
        with torch.no_grad():
            for projection, weight, bias in reversed(saved):  # a layer of several heads was saved once a head
                projection.weight.copy_(weight)
                projection.bias = bias


@pytest.mark.slow  # three forward passes of 80 tokens and a batch of 4
def test_zero_and_mean_ablation_equal_edited_output_projections(decoder, found):
    ablation = decoder.induction_ablation(found, n=5, controls=0)
    top = ablation.sets[0]
    assert top.heads == found.top_heads(5)
    inputs = {}

    def keep(module, args, layer):
        inputs[layer] = args[0][0].detach()

    layers = sorted({layer for layer, _ in top.heads})
    handles = [decoder.model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(
        lambda module, args, layer=layer: keep(module, args, layer)) for layer in layers]  # fmt: skip
    try:
        plain = plain_losses(decoder.model, found.ids)
    finally:
        for handle in handles:
            handle.remove()
    width = 64
    means = {(layer, head): inputs[layer][:, head * width:(head + 1) * width].mean(0) for layer, head in top.heads}
    torch.testing.assert_close(found.head_means[18, 6], means[(18, 6)], atol=1e-5, rtol=1e-4)
    for how, replaced in (("zero", None), ("mean", means)):
        with heads_replaced(decoder.model, top.heads, replaced):
            expected = plain_losses(decoder.model, found.ids)
        got = top.zero if how == "zero" else top.mean
        torch.testing.assert_close(got[1:], expected[1:].double().to(got.dtype), atol=2e-3, rtol=1e-4)
    assert torch.allclose(ablation.losses[1:], plain[1:].to(ablation.losses.dtype), atol=1e-3)


@pytest.fixture(scope="module")
def by_hand(decoder):
    """Direct shares of logit(Paris) - logit(Rome) after lesson 09's prompt, from plain hooks and the weights."""
    model, tokenizer = decoder.model, decoder.tokenizer
    ids = torch.tensor([tokenizer("The capital of France is").input_ids])
    paris, rome = (tokenizer(w).input_ids[0] for w in (" Paris", " Rome"))
    seen: dict = {}
    hooks = [model.model.norm.register_forward_pre_hook(lambda mod, args: seen.update(stream=args[0][0, -1]))]
    for layer, block in enumerate(model.model.layers):
        hooks.append(block.self_attn.o_proj.register_forward_pre_hook(
            lambda mod, args, layer=layer: seen.update({("heads", layer): args[0][0, -1]})))
        hooks.append(block.self_attn.register_forward_hook(
            lambda mod, args, out, layer=layer: seen.update({("attention", layer): out[0][0, -1]})))
        hooks.append(block.mlp.register_forward_hook(
            lambda mod, args, out, layer=layer: seen.update({("mlp", layer): out[0, -1]})))  # fmt: skip
    try:
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1].double()
    finally:
        for hook in hooks:
            hook.remove()
    seen = {key: value.detach() for key, value in seen.items()}
    norm = model.model.norm
    stream = seen["stream"].double()
    scale = (stream.pow(2).mean() + norm.variance_epsilon).sqrt()
    unembed = model.lm_head.weight.detach().double()
    direction = (unembed[paris] - unembed[rome]) * norm.weight.detach().double() / scale
    width = 64
    heads = torch.zeros(30, 9, dtype=torch.float64)
    for layer in range(30):
        o_proj = model.model.layers[layer].self_attn.o_proj.weight.detach().double()
        for head in range(9):
            part = o_proj[:, head * width:(head + 1) * width] @ seen[("heads", layer)].double()[head * width:
                                                                                            (head + 1) * width]
            heads[layer, head] = direction @ part
    return {"difference": float(logits[paris] - logits[rome]), "scale": float(scale), "heads": heads,
            "attention": torch.tensor([float(direction @ seen[("attention", i)].double()) for i in range(30)],
                                      dtype=torch.float64),
            "mlp": torch.tensor([float(direction @ seen[("mlp", i)].double()) for i in range(30)], dtype=torch.float64)}
    # fmt: skip


def test_logit_attribution_equals_the_weights_by_hand_and_adds_up(decoder, by_hand):
    found = decoder.logit_attribution("The capital of France is", " Paris", " Rome")
    assert found.norm == "RMSNorm" and found.constant == 0.0
    assert found.difference == pytest.approx(by_hand["difference"], abs=1e-4)
    assert found.total == pytest.approx(found.difference, abs=1e-4)  # the parts add up, up to float32
    assert found.scale == pytest.approx(by_hand["scale"], rel=1e-5)
    torch.testing.assert_close(found.attention, by_hand["attention"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(found.mlp, by_hand["mlp"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(found.heads, by_hand["heads"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(found.heads.sum(1) + found.attention_bias, found.attention, atol=1e-5, rtol=1e-5)
    # the lens is the running sum read with each layer's own scale instead of the final one
    torch.testing.assert_close(found.lens, found.running * found.scale / found.scales, atol=1e-4, rtol=1e-4)
    from llminspect.analysis.lens import every_layer_logits

    logits = every_layer_logits(decoder, decoder.inputs("The capital of France is"))[:, -1].double()
    paris, rome = (decoder.tokenize(w).ids[0] for w in (" Paris", " Rome"))
    torch.testing.assert_close(found.lens, logits[:, paris] - logits[:, rome], atol=1e-3, rtol=1e-4)
