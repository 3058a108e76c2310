"""Models instructors bring: odd folders, odd files, and the claims that must hold for them.

The zoo (test_zoo.py) runs every capability on many architectures; these tests pin down the
single cases behind it: a by-hand walk that would be wrong is refused, a damaged or incomplete
folder gets a clear message, a GGUF file loads, and views say what they were given.
"""

from __future__ import annotations

import shutil

import pytest
import torch

import llminspect as li
import llminspect.analysis.by_hand.decoder as by_hand
from llminspect import errors, views
from llminspect.models.registry import model_directory


def test_a_by_hand_walk_that_misses_the_forward_pass_is_refused(tiny, monkeypatch):
    m = li.load(str(tiny("qwen2")))  # sliding windows on some layers only
    assert len(m.walk("happy bird eats the mouse", how="by hand")) > 10
    original = by_hand._layer_masks

    def same_mask_everywhere(config, length, dtype, device):  # the bug the issue found: one window for all
        masks = original(config, length, dtype, device)
        return [masks[-1]] * len(masks)

    monkeypatch.setattr(by_hand, "_layer_masks", same_mask_everywhere)
    with pytest.raises(errors.FamilyError, match="does not reproduce .* off by"):
        m.walk("happy bird eats the mouse", how="by hand")


def test_the_encoder_walk_ends_on_its_pooled_output(encoder):
    ids = torch.tensor([encoder.tokenize("The quick brown fox").ids])
    with torch.no_grad():
        pooled = encoder.model(ids).pooler_output[0]
    for how in ("hooks", "by hand"):
        walk = encoder.walk("The quick brown fox", how=how)
        assert walk[-1].kind == "head"
        torch.testing.assert_close(walk[-1].output, pooled, atol=1e-6, rtol=1e-5)  # tanh included


def test_a_decoder_saved_without_its_head_is_a_decoder_without_invented_weights(tiny):
    m = li.load(str(tiny("llama-no-head")))
    assert m.family == "decoder" and not m.has_lm_head
    assert m.trace("happy bird").logits is None
    with pytest.raises(errors.FamilyError, match="saved without its language-model head"):
        m.next_tokens("happy bird")


def test_a_folder_without_tokenizer_files_says_so(tiny, tmp_path):
    for path in tiny("gpt2").iterdir():
        if path.name in ("config.json", "model.safetensors", "generation_config.json"):
            shutil.copy(path, tmp_path / path.name)
    with pytest.raises(errors.ModelFileError, match="no tokenizer files"):
        li.load(str(tmp_path))


def test_a_cut_safetensors_file_is_refused_before_loading(tiny, tmp_path):
    for path in tiny("gpt2").iterdir():
        shutil.copy(path, tmp_path / path.name)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for options in ({}, {"offload": "disk"}, {"device_map": {"": "cpu"}}):
        with pytest.raises(errors.ModelFileError, match="damaged or incomplete"):
            li.load(str(tmp_path), **options)


def test_a_gguf_file_is_expanded_once_and_loads(tmp_path, monkeypatch):
    import llminspect.models.conversion

    decoder_folder = model_directory("decoder")
    monkeypatch.setenv("LLMINSPECT_CACHE", str(tmp_path / "cache"))
    expanded = []

    def expand(path, out):  # the real expansion is tested on the embedded decoder; here: routing and caching
        expanded.append(path)
        shutil.copytree(decoder_folder, out, dirs_exist_ok=True)

    monkeypatch.setattr(llminspect.models.conversion, "expand_gguf", expand)
    file = tmp_path / "SmolLM2.Q4.gguf"
    file.write_bytes(b"GGUF" + b"\0" * 64)
    first, second = li.load(str(file)), li.load(str(file))
    assert len(expanded) == 1 and first.family == second.family == "decoder"
    assert first.tokenize("hello").ids == second.tokenize("hello").ids


def test_a_file_that_is_not_gguf_gets_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMINSPECT_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(errors.ModelFileError, match="cannot expand"):
        li.load(str(bad))
    other = tmp_path / "weights.safetensors"
    other.write_bytes(b"x")
    with pytest.raises(errors.UnknownModelError, match="is a file"):
        li.load(str(other))


def test_a_missing_or_foreign_audio_file_is_named(whisper, tmp_path):
    with pytest.raises(errors.InputError, match="no audio file at .*missing.wav"):
        whisper.trace(str(tmp_path / "missing.wav"))
    (tmp_path / "talk.mp3").write_bytes(b"ID3")
    with pytest.raises(errors.InputError, match="not a WAV file"):
        whisper.trace(str(tmp_path / "talk.mp3"))


WRONG = [
    ("views", "tokens", "text"), ("views", "token_table", 3), ("views", "compare", {"a": "b"}),
    ("views", "healing", None), ("views", "layer_similarity", []), ("views", "projection", {}),
    ("views", "neighbours", "king"), ("views", "rankings", []), ("views", "attention", "a trace"),
    ("views", "bertviz", "a trace"), ("views", "audio_cross_attention", None), ("views", "importance", torch.zeros(3)),
    ("views", "compare_methods", [1, 2]), ("views", "outline", "model"), ("views", "steps_table", []),
    ("views", "residual_stream", None), ("views", "logit_lens", "lens"), ("views", "answer_rank", None),
    ("views", "rotary", 1.0), ("views", "branches", [None]), ("views", "surprisal", "text"),
    ("views", "routing", "routes"), ("views", "induction_losses", "found"), ("views", "induction_heads", None),
    ("views", "induction_ablation", []), ("views", "logit_attribution", "dla"), ("views", "head_attribution", 1),
    ("views", "probe", "probe"), ("views", "steering", None), ("views", "steered_text", "text"),
    ("views", "superposition", torch.zeros(2, 5)),
    ("labs", "walk", "walk"), ("labs", "sampling", "decoder"), ("labs", "attention", None),
    ("labs", "importance", "decoder"),
]  # fmt: skip


@pytest.mark.parametrize(("where", "name", "wrong"), WRONG, ids=[f"{w}.{n}" for w, n, _ in WRONG])
def test_views_and_labs_say_what_they_draw_when_given_something_else(where, name, wrong):
    with pytest.raises(errors.WrongDataError, match=f"{where}.{name} draws .* \\(from .*\\), not a"):
        getattr(getattr(li, where), name)(wrong)


def test_a_trace_given_to_the_lens_view_names_the_lens(decoder):
    with pytest.raises(errors.WrongDataError, match="draws a LogitLens .*m.logit_lens.*not a Trace"):
        views.logit_lens(decoder.trace("The capital of France is"))
