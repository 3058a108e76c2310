"""load(): specs, families, devices, and the clear errors for everything that can go wrong."""

from __future__ import annotations

import time

import pytest
import torch
import transformers
from zoo import WORDS, word_tokenizer

import llminspect as li
from llminspect import errors
from llminspect.models.loading import resolve_device, resolve_dtype
from llminspect.models.structure import detect_family

# tiny word-level models (tests/zoo.py): 1 decoder layer, the decoder starts from <pad> (id 0)
SEQ2SEQ_OPTIONS = {
    "t5": {"num_decoder_layers": 1},
    "bart": {"decoder_layers": 1, "forced_eos_token_id": None},
    "marian": {"decoder_layers": 1},
}


@pytest.mark.parametrize(
    ("config", "family"),
    [
        (transformers.BertConfig(), "encoder"),
        (transformers.BertConfig(architectures=["BertForMaskedLM"]), "encoder"),
        (transformers.BertConfig(is_decoder=True, architectures=["BertLMHeadModel"]), "decoder"),
        (transformers.GPT2Config(), "decoder"),
        (transformers.LlamaConfig(), "decoder"),
        (transformers.MistralConfig(), "decoder"),
        (transformers.T5Config(), "encoder-decoder"),
        (transformers.BartConfig(), "encoder-decoder"),
        (transformers.MarianConfig(), "encoder-decoder"),
        (transformers.WhisperConfig(), "encoder-decoder"),
    ],
)
def test_family_comes_from_the_config(config, family):
    assert detect_family(config) == family


@pytest.mark.parametrize("kind", sorted(SEQ2SEQ_OPTIONS))
def test_text_encoder_decoders_load_from_a_folder_and_trace(tiny, kind):
    folder = tiny(kind, tokenizer="words", decoder_start_token_id=0, **SEQ2SEQ_OPTIONS[kind])
    m = li.load(str(folder), device="cpu")
    assert m.family == "encoder-decoder" and m.modality == "text"
    tr = m.trace("the cat sees a dog", target="le chat voit chien")
    assert tr.source.strings == ["the", "cat", "sees", "a", "dog", "</s>"]
    assert tr.tokens.ids == [0, 10, 12, 14, 13, 1]  # start, target words, end
    with torch.no_grad():
        ref = m.model(
            input_ids=torch.tensor([tr.source.ids]),
            decoder_input_ids=torch.tensor([tr.tokens.ids]),
            output_attentions=True,
            output_hidden_states=True,
        )
    for captured, reference in [
        (tr.encoder_attentions, ref.encoder_attentions),
        (tr.attentions, ref.decoder_attentions),
        (tr.cross_attentions, ref.cross_attentions),
        (tr.hidden_states, ref.decoder_hidden_states),
    ]:
        torch.testing.assert_close(captured, torch.stack([layer[0] for layer in reference]))
    assert tr.cross_attentions.shape == (1, 4, 6, 6)
    generated = m.trace("the dog likes a cat", max_new_tokens=4)
    assert generated.tokens.ids[0] == 0 and 2 <= len(generated.tokens) <= 5


def test_decoder_and_masked_encoder_from_folders(tiny):
    m = li.load(str(tiny("gpt2", tokenizer="words", n_positions=8)), device="cpu")
    tr = m.trace("the cat sees a dog")
    assert m.family == "decoder" and tr.attentions.shape == (2, 4, 6, 6) and tr.logits.shape == (6, len(WORDS))
    with pytest.raises(errors.InputTooLongError, match="at most 8"):
        m.trace("the cat sees a dog the cat sees a dog")
    m = li.load(str(tiny("bert-mlm", tokenizer="words")), device="cpu")
    assert m.family == "encoder" and m.trace("the cat").logits.shape == (3, len(WORDS))


def test_sdpa_models_handed_to_an_inspector_are_switched_to_eager(tiny):
    folder = tiny("gpt2", tokenizer="words")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    m = li.Inspector(model, word_tokenizer())
    assert m.trace("the cat").attentions.shape == (2, 4, 3, 3)


def test_unknown_name_offline_fails_fast_and_lists_the_embedded_models(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(errors.UnknownModelError) as caught:
        li.load("decodr")
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert "Did you mean 'decoder'?" in message and "'toy-seq2seq'" in message and "offline" in message


def test_hub_id_offline_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(errors.UnknownModelError, match="cannot be reached"):
        li.load("openai-community/gpt2")


def test_missing_and_non_model_folders(tmp_path):
    with pytest.raises(errors.UnknownModelError, match="no model folder"):
        li.load(str(tmp_path / "nope"))
    with pytest.raises(errors.UnknownModelError, match="no config.json"):
        li.load(str(tmp_path))
    with pytest.raises(errors.UnknownModelError, match="Embedded models"):
        li.load("")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(errors.DeviceError, match="device='cpu'"):
        li.load("toy-seq2seq", device="cuda")


def test_device_and_dtype_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(errors.DeviceError, match="not a device name"):
        resolve_device("gpu please")
    assert resolve_dtype("auto") is torch.float32 and resolve_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(errors.LLMInspectError, match="floating-point"):
        resolve_dtype("int8")


def test_bfloat16_load_runs(toy):
    m = li.load("toy-seq2seq", device="cpu", dtype="bfloat16")
    assert m.dtype == torch.bfloat16
    assert m.trace("happy bird eats mouse").tokens.strings[1:-1] == ["birdo", "gaja", "manghas", "muso"]
