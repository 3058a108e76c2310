"""Every tensor a Trace captures equals a direct transformers forward of the same model.

The reference side never goes through llminspect: it loads the shipped files with plain
transformers (or uses the raw model object with the raw tokenizer) and calls ``model(...)``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer, WhisperFeatureExtractor

from llminspect.analysis.audio import read_wav
from llminspect.models.registry import ASSETS, EMBEDDED, sample_audio, source_path
from llminspect.teaching import toy_task

CLOSE = {"atol": 1e-5, "rtol": 1e-4}


def assert_layers_equal(captured: torch.Tensor, reference: tuple[torch.Tensor, ...]) -> None:
    assert captured.shape[0] == len(reference)
    for layer, expected in zip(captured, reference, strict=True):
        torch.testing.assert_close(layer, expected[0].float(), **CLOSE)


def assert_encoder_decoder_equal(tr, ref) -> None:
    """Every tensor of an encoder-decoder trace against a plain forward's outputs."""
    assert_layers_equal(tr.encoder_hidden_states, ref.encoder_hidden_states)
    assert_layers_equal(tr.encoder_attentions, ref.encoder_attentions)
    assert_layers_equal(tr.hidden_states, ref.decoder_hidden_states)
    assert_layers_equal(tr.attentions, ref.decoder_attentions)
    assert_layers_equal(tr.cross_attentions, ref.cross_attentions)
    torch.testing.assert_close(tr.logits, ref.logits[0], **CLOSE)


def test_encoder_trace_matches_plain_transformers(encoder):
    folder = source_path(EMBEDDED["encoder"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    text = "The quick brown fox jumps over the lazy dog"
    with torch.no_grad():
        ref = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True, output_attentions=True)
    tr = encoder.trace(text)
    assert tr.tokens.strings[0] == "[CLS]" and tr.tokens.strings[-1] == "[SEP]" and len(tr.tokens) == 11
    assert tr.attentions.shape == (6, 12, 11, 11) and tr.hidden_states.shape == (7, 11, 384)
    assert_layers_equal(tr.hidden_states, ref.hidden_states)
    assert_layers_equal(tr.attentions, ref.attentions)
    assert tr.logits is None  # all-MiniLM ships no language-model head
    torch.testing.assert_close(tr.attentions.sum(-1), torch.ones(6, 12, 11), **CLOSE)


def test_decoder_trace_matches_raw_forward_and_knows_paris(decoder):
    text = "The capital of France is"
    ids = decoder.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        ref = decoder.model(**ids, output_hidden_states=True, output_attentions=True)
    tr = decoder.trace(text)
    assert tr.tokens.ids == ids.input_ids[0].tolist()
    assert tr.attentions.shape == (30, 9, 5, 5) and tr.num_key_value_heads == 3
    assert_layers_equal(tr.hidden_states, ref.hidden_states)
    assert_layers_equal(tr.attentions, ref.attentions)
    torch.testing.assert_close(tr.logits, ref.logits[0], **CLOSE)
    # causal: nothing attends to the future
    assert torch.all(torch.triu(tr.attentions, diagonal=1) == 0)
    probs = tr.logits[-1].softmax(-1)
    assert decoder.tokenizer.decode(int(probs.argmax())) == " Paris"
    assert probs.max().item() == pytest.approx(0.7725, abs=0.005)


@pytest.mark.slow
def test_cached_decoder_equals_loading_the_gguf_file(decoder):
    from transformers import AutoModelForCausalLM

    gguf = source_path(EMBEDDED["decoder"])
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, attn_implementation="eager").eval()
    cached = decoder.model.state_dict()
    for name, tensor in direct.state_dict().items():
        assert torch.equal(cached[name], tensor), name
    ids = decoder.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        # the weights are equal bit for bit (above); two separate forward passes agree within float32
        torch.testing.assert_close(decoder.model(**ids).logits, direct(**ids).logits, **CLOSE)


def test_whisper_trace_matches_raw_forward_and_transcribes(whisper):
    clip = sample_audio("quick_brown_fox")
    tr = whisper.trace(clip)
    text = whisper.tokenizer.decode(tr.tokens.ids, skip_special_tokens=True)
    assert text == " The quick brown fox jump over the lazy dog. The capital of France is Paris."
    assert tr.tokens.strings[:2] == ["<|startoftranscript|>", "<|notimestamps|>"]
    assert tr.tokens.strings[-1] == "<|endoftext|>"
    features = WhisperFeatureExtractor()(read_wav(clip).waveform, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        ref = whisper.model(
            input_features=features.input_features,
            decoder_input_ids=torch.tensor([tr.tokens.ids]),
            output_hidden_states=True,
            output_attentions=True,
        )
    n = len(tr.tokens)
    assert tr.encoder_attentions.shape == (4, 6, 1500, 1500)
    assert tr.cross_attentions.shape == (4, 6, n, 1500) and tr.decoder_attentions.shape == (4, 6, n, n)
    assert_encoder_decoder_equal(tr, ref)
    assert tr.audio_positions == 240  # 4.8 s of audio at 50 encoder positions per second
    # Alignment heads read words off in time order: the argmax frame never jumps far back.
    heads = whisper.model.generation_config.alignment_heads
    alignment = torch.stack([tr.cross_attentions[layer, head] for layer, head in heads]).mean(0)
    frames = alignment[:, : tr.audio_positions].argmax(-1)
    words = [i for i, s in enumerate(tr.tokens.strings) if s.startswith("Ġ")]
    times = frames[words].tolist()
    assert all(later >= earlier - 2 for earlier, later in zip(times, times[1:], strict=False)), times
    assert times[-1] - times[0] > 150  # first to last word spans more than 3 s


def held_out_sentences(count: int) -> list[str]:
    rng, sentences = random.Random(123), []
    while len(sentences) < count:
        sentence = toy_task.random_sentence(rng)
        if toy_task.held_out(sentence):
            sentences.append(sentence)
    return sentences


def test_toy_trace_matches_plain_transformers(toy):
    folder = ASSETS / "toy_seq2seq"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, attn_implementation="eager").eval()
    tr = toy.trace("young frog helps cat")
    assert tr.source.strings == ["young", "frog", "helps", "cat", "</s>"]
    assert tr.tokens.strings == ["<s>", "rano", "juna", "helpas", "kato", "</s>"]
    with torch.no_grad():
        ref = model(
            input_ids=tokenizer("young frog helps cat", return_tensors="pt").input_ids,
            decoder_input_ids=torch.tensor([tr.tokens.ids]),
            output_hidden_states=True,
            output_attentions=True,
        )
    assert_encoder_decoder_equal(tr, ref)


def test_toy_translates_held_out_sentences_and_attends_to_the_aligned_word(toy):
    """The task's structure shows in cross-attention: the row that writes a word looks at its source word."""
    hits = total = 0
    for sentence in held_out_sentences(100):
        tr = toy.trace(sentence)
        assert toy.tokenizer.decode(tr.tokens.ids, skip_special_tokens=True) == toy_task.translate(sentence)
        last_layer = tr.cross_attentions[-1].mean(0)  # [target, source], heads averaged
        for row, source in enumerate(toy_task.alignment(sentence)):
            # decoder position `row` reads target word row-1 and writes target word `row`
            hits += int(last_layer[row].argmax()) == source
            total += 1
    assert hits / total >= 0.99, f"{hits}/{total} target words attend to their aligned source word"


def test_toy_trace_with_a_given_target(toy):
    tr = toy.trace("big king sees dog", target="rego granda vidas hundo")
    assert tr.tokens.strings == ["<s>", "rego", "granda", "vidas", "hundo", "</s>"]
    assert tr.cross_attentions.shape == (2, 4, 6, 5)
    np.testing.assert_allclose(tr.cross_attentions.sum(-1).numpy(), 1.0, atol=1e-5)


def test_long_traces_keep_attentions_compact_and_within_float16_of_transformers(decoder, encoder, monkeypatch):
    import llminspect.analysis.maps as maps

    monkeypatch.setattr(maps, "COMPACT_ABOVE", 0)  # what a 1,024-token trace does, on a short text
    text = "The quick brown fox jumps over the lazy dog and runs far away"
    tr = decoder.trace(text)
    assert isinstance(tr.attentions, maps.AttentionMaps) and tr.attentions.causal
    layers, heads, n, _ = tr.attentions.shape
    assert tr.attentions.nbytes < layers * heads * n * n * 4 / 3.5  # float16 and only the lower triangle
    with torch.no_grad():
        ref = decoder.model(torch.tensor([tr.tokens.ids]), output_attentions=True).attentions
    for layer in (0, 15, 29):  # float16 storage: about 3 significant digits
        torch.testing.assert_close(tr.attentions[layer], ref[layer][0], atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(tr.attentions[3, 4, -1], ref[3][0, 4, -1], atol=2e-4, rtol=1e-3)
    assert torch.all(torch.triu(tr.attentions[7], diagonal=1) == 0)
    bidirectional = encoder.trace(text).attentions
    assert isinstance(bidirectional, maps.AttentionMaps) and not bidirectional.causal
    assert bidirectional.dense().shape == (6, 12, len(encoder.tokenize(text)), len(encoder.tokenize(text)))
