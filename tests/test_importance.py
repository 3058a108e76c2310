"""Token importance against captum's own layer API, hand-written torch, and the completeness axiom."""

from __future__ import annotations

import ctypes
import gc

import numpy as np
import pytest
import torch

import llminspect as li
from llminspect import errors
from llminspect.analysis.audio import read_wav
from llminspect.analysis.importance import cost
from llminspect.analysis.importance.problems import _encoder_embeddings
from llminspect.models.registry import sample_audio

PROMPT = "The capital of France is"


def prompt_setup(decoder):
    ids = torch.tensor([decoder.tokenizer(PROMPT).input_ids])
    paris = decoder.tokenizer(" Paris", add_special_tokens=False).input_ids[0]
    pad = decoder.tokenizer.pad_token_id
    return ids, paris, pad


def test_integrated_gradients_equals_captum_layer_ig_and_is_complete(decoder):
    from captum.attr import LayerIntegratedGradients

    result = decoder.importance(PROMPT, " Paris")
    ids, paris, pad = prompt_setup(decoder)

    def probability(input_ids):
        return decoder.model(input_ids=input_ids).logits[:, -1].softmax(-1)[:, paris]

    layer_ig = LayerIntegratedGradients(probability, decoder.model.get_input_embeddings())
    expected = layer_ig.attribute(ids, baselines=torch.full_like(ids, pad), n_steps=50).sum(-1)[0]
    torch.testing.assert_close(result.scores[0], expected.detach(), atol=1e-4, rtol=1e-3)
    assert result.f_input[0] == pytest.approx(0.7725, abs=0.001) and result.f_baseline[0] < 0.01
    gap = result.f_input[0] - result.f_baseline[0]
    assert abs(result.delta[0]) < 0.01 * gap  # converged at the default 50 steps
    assert float(result.scores[0].sum()) == pytest.approx(gap + result.delta[0], abs=1e-4)
    assert result.passes == 50 and result.signed and "'<|im_end|>' (pad token)" in result.baseline


def test_gradient_x_input_and_saliency_match_autograd(decoder):
    ids, paris, _ = prompt_setup(decoder)
    embeds = decoder.model.get_input_embeddings()(ids).detach().requires_grad_(True)
    decoder.model(inputs_embeds=embeds).logits[0, -1].softmax(-1)[paris].backward()
    gxi = decoder.importance(PROMPT, " Paris", "gradient_x_input").scores[0]
    sal = decoder.importance(PROMPT, " Paris", "saliency").scores[0]
    torch.testing.assert_close(gxi, (embeds.grad * embeds).sum(-1)[0].detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(sal, embeds.grad.norm(dim=-1)[0], atol=1e-5, rtol=1e-4)


def test_feature_ablation_matches_a_hand_loop_and_the_facts(decoder):
    result = decoder.importance(PROMPT, " Paris", "feature_ablation")
    ids, paris, pad = prompt_setup(decoder)
    with torch.no_grad():
        full = decoder.model(input_ids=ids).logits[0, -1].log_softmax(-1)[paris]
        drops = []
        for i in range(ids.shape[1]):
            ablated = ids.clone()
            ablated[0, i] = pad
            drops.append(float(full - decoder.model(input_ids=ablated).logits[0, -1].log_softmax(-1)[paris]))
    np.testing.assert_allclose(result.scores[0].numpy(), drops, atol=1e-3)
    assert "log-probability" in result.quantity
    ranking = [result.sources[i] for i in result.scores[0].argsort(descending=True)[:3]]
    assert ranking == ["␣is", "␣France", "␣capital"]  # methods disagree: IG ranks "The" first
    assert result.sources[int(decoder.importance(PROMPT, " Paris").scores[0].argmax())] == "The"


def test_attention_comparison_is_the_last_layer_mean(decoder):
    result = decoder.importance(PROMPT, " Paris", "attention")
    trace = decoder.trace(PROMPT)
    torch.testing.assert_close(result.scores[0], trace.attentions[-1, :, -1].mean(0), atol=1e-5, rtol=1e-4)
    assert not result.signed and result.delta is None and "not an attribution" in result.baseline


def test_contrast_and_continuations(decoder):
    contrast = decoder.importance(PROMPT, " Paris", contrast=" London")
    log_probs = decoder.trace(PROMPT).logits[-1].log_softmax(-1)
    london = decoder.tokenizer(" London", add_special_tokens=False).input_ids[0]
    _, paris, _ = prompt_setup(decoder)
    assert contrast.f_input[0] == pytest.approx(float(log_probs[paris] - log_probs[london]), abs=1e-3)
    gap = contrast.f_input[0] - contrast.f_baseline[0]
    assert float(contrast.scores[0].sum()) == pytest.approx(gap + contrast.delta[0], abs=1e-3)
    continuation = decoder.importance(PROMPT, " Paris, the city", "gradient_x_input")
    assert continuation.targets == [" Paris", ",", " the", " city"] and continuation.scores.shape == (4, 5)
    with pytest.raises(errors.InputError, match="single tokens"):
        decoder.importance(PROMPT, " Paris", contrast=" New York")


def test_encoder_similarity_importance(encoder):
    from llminspect.analysis.embeddings import cosine_matrix, sentence_vectors

    a, b = "She plays the guitar every evening.", "Every night she practises her guitar."
    result = encoder.importance(a, other=b)
    assert result.sources == ["she", "plays", "the", "guitar", "every", "evening", "."]
    assert result.f_input[0] == pytest.approx(float(cosine_matrix(sentence_vectors(encoder, [a, b]))[0, 1]), abs=1e-5)
    assert abs(result.delta[0]) < 0.01
    assert result.sources[int(result.scores[0].argmax())] == "guitar"
    with pytest.raises(errors.FamilyError, match="second sentence"):
        encoder.importance(a)


def test_toy_importance_lands_on_the_aligned_source_word(toy):
    result = toy.importance("happy bird eats small mouse")
    assert result.targets == ["birdo", "gaja", "manghas", "muso", "eta"]
    assert result.sources == ["happy", "bird", "eats", "small", "mouse"]
    aligned = [result.sources[int(row.argmax())] for row in result.scores]
    assert aligned == ["bird", "happy", "eats", "mouse", "small"]  # the translation's word alignment
    assert max(abs(d) for d in result.delta) < 0.01


@pytest.mark.parametrize("kind", ["bart", "marian"])
def test_encoder_embeddings_reproduce_the_encoder_input(kind, tiny):
    model = li.load(tiny(kind, tokenizer="words", scale_embedding=True)).model
    ids = torch.tensor([[3, 4, 5, 1]])
    embeds = _encoder_embeddings(model, ids)
    with torch.no_grad():
        torch.testing.assert_close(
            model.get_encoder()(inputs_embeds=embeds).last_hidden_state,
            model.get_encoder()(input_ids=ids).last_hidden_state,
        )


@pytest.mark.slow
def test_whisper_audio_windows_follow_the_words(whisper):
    result = whisper.importance(sample_audio("hello_world"), method="feature_ablation", window=0.25)
    assert result.targets[:2] == ["␣Hello", "␣World"] and len(result.windows) == len(result.sources)
    peaks = [float(np.mean(result.windows[int(row.argmax())])) for row in result.scores]
    assert peaks[0] < 0.5 and peaks[result.targets.index("␣Workshop")] > 1.5
    duration = read_wav(sample_audio("hello_world")).duration
    assert result.windows[-1][1] >= duration > result.windows[-1][0]  # windows cover the clip, not the padding


def test_bad_requests(decoder, toy):
    with pytest.raises(errors.InputError, match="choose one of"):
        decoder.importance(PROMPT, " Paris", "magic")
    with pytest.raises(errors.InputError, match="baseline="):
        decoder.importance(PROMPT, " Paris", baseline="noise")
    with pytest.raises(errors.FamilyError, match="contrast"):
        toy.importance("bird eats mouse", contrast="x")
    with pytest.raises(errors.EmptyInputError):
        decoder.importance("", " Paris")
    assert cost("integrated_gradients", 5, 2, n_steps=50) == 100 and cost("feature_ablation", 5, 2) == 12


def current_rss_mb() -> float:
    """Resident memory after collecting garbage and handing freed heap back to the OS, so that
    only memory still in use counts (glibc keeps freed blocks mapped otherwise)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


@pytest.mark.slow
def test_ten_calls_do_not_grow_memory(decoder):
    def both() -> None:  # a gradient method (gradients left behind?) and a perturbation one (cached forwards kept?)
        decoder.importance(PROMPT, " Paris", n_steps=4, internal_batch_size=4)
        decoder.importance(PROMPT, " Paris", "feature_ablation")  # 6 forwards, ~1 MB of logits each

    for _ in range(3):  # warm up allocator caches
        both()
    before = current_rss_mb()
    for _ in range(10):  # a call that kept its forwards would keep ~6 MB: 60 MB over ten calls
        both()
    assert current_rss_mb() - before < 40, f"memory grew by {current_rss_mb() - before:.0f} MB"
    assert all(p.grad is None for p in decoder.model.parameters())


@pytest.mark.slow  # four attributions drawn (~11 s): the full suite runs it
def test_views_show_the_scores_and_the_honesty_checks(decoder, toy):
    result = decoder.importance("<script>x</script> The capital of France is", " Paris")
    html = li.views.importance(result).to_html()
    assert "<script" not in html and "&lt;/" in html  # the tokens "<", "</" show as text
    assert f"convergence delta = {result.delta[0]:+.4f}" in html
    for score in result.scores[0].tolist():
        assert f"title='{score:+.4f}'" in html
    unconverged = decoder.importance(PROMPT, " Paris", contrast=" London")
    assert "not converged" in li.views.importance(unconverged).body
    several = toy.importance("happy bird eats small mouse")
    fig = li.views.importance(several)
    np.testing.assert_allclose(fig.data[0].z, several.scores.numpy())
    methods = [decoder.importance(PROMPT, " Paris", m) for m in ("integrated_gradients", "feature_ablation")]
    bars = li.views.compare_methods(methods)
    np.testing.assert_allclose(bars.data[1].y, methods[1].scores[0].numpy())


def test_lab_widget_lists_top_tokens_and_explains(decoder):
    lab = li.labs.importance(decoder, PROMPT, k=3)
    text, (target, method, button), result, _ = (
        lab.children[0],
        lab.children[1].children,
        lab.children[2],
        lab.children[3],
    )
    assert target.value == " Paris" and len(target.options) == 3
    assert "integrated gradients" in result.value
    method.value = "saliency"
    button.click()
    assert "saliency" in result.value
    text.value = "The capital of Italy is"
    assert target.options[0][1] == " Rome"


def test_shapley_values_add_up_to_the_whole_change(toy):
    result = toy.importance("happy bird eats small mouse", method="shapley", n_samples=10)
    for row, value, base in zip(result.scores, result.f_input, result.f_baseline, strict=True):
        assert float(row.sum()) == pytest.approx(value - base, abs=1e-3)  # efficiency holds per permutation
    assert result.passes == cost("shapley", 5, 5, n_samples=10)


def test_toy_attention_comparison_is_the_last_layer_cross_attention(toy):
    result = toy.importance("happy bird eats small mouse", method="attention")
    trace = toy.trace("happy bird eats small mouse")
    expected = trace.cross_attentions[-1, :, :5, :5].mean(0)  # rows writing the 5 words; the 5 source words
    torch.testing.assert_close(result.scores, expected, atol=1e-5, rtol=1e-4)
