"""Loading is safe by default: no pickle, no downloaded code, no loading what cannot fit."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

import llminspect as li
from llminspect.errors import ModelFileError, OutOfMemoryError, RemoteCodeError
from llminspect.models import preflight
from llminspect.models.registry import model_directory


@pytest.fixture()
def pickle_folder(tmp_path, tiny):
    m = li.load(tiny("gpt2", n_layer=1))
    m.model.config.save_pretrained(tmp_path)
    torch.save(m.model.state_dict(), tmp_path / "pytorch_model.bin")
    m.tokenizer.save_pretrained(tmp_path)
    return tmp_path, m.model


def test_pickle_checkpoints_are_refused_unless_allowed(pickle_folder):
    folder, model = pickle_folder
    with pytest.raises(ModelFileError, match="pickle files \\(pytorch_model.bin\\).*allow_pickle=True"):
        li.load(str(folder))
    with pytest.warns(UserWarning, match="only do this for files you trust"):
        m = li.load(str(folder), allow_pickle=True)
    ids = torch.tensor([m.tokenize("hello there").ids])
    with torch.no_grad():
        torch.testing.assert_close(m.trace("hello there").logits, model(ids).logits[0])


def test_a_models_own_code_never_runs_unless_trusted(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "wiggle-net",
        "auto_map": {"AutoConfig": "configuration_wiggle.WiggleConfig"},
    }))  # fmt: skip
    (tmp_path / "configuration_wiggle.py").write_text("raise SystemExit('downloaded code ran')\n")
    with pytest.raises(RemoteCodeError, match="trust_remote_code=True only if you trust it"):
        li.load(str(tmp_path))


def test_weights_size_is_read_from_the_headers():
    folder = model_directory("toy-seq2seq")
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder)
    stored = {name for name in model.state_dict()}
    size = preflight.weights_bytes(folder, torch.float32)
    assert size >= 4 * sum(p.numel() for p in model.parameters())  # the file may also hold tied copies, buffers
    assert size <= 4 * sum(model.state_dict()[n].numel() for n in stored)
    assert preflight.weights_bytes(folder, torch.bfloat16) == size // 2


def test_a_model_that_cannot_fit_is_refused_before_loading(monkeypatch):
    with pytest.raises(OutOfMemoryError, match="offload='disk'"):
        preflight.check_memory(model_directory("decoder"), torch.float32, torch.device("cpu"), free=100 * 2**20)
    preflight.check_memory(model_directory("decoder"), torch.float32, torch.device("cpu"), free=2**40)  # fits
    monkeypatch.setattr(preflight, "free_bytes", lambda device: 64 * 2**20)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(OutOfMemoryError, match=r"need about 0.5 GiB at float32, but only 0.1 GiB of RAM is free"):
        li.load("decoder")
    assert li.load("decoder", offload="disk").offloaded is True  # streaming is the way out: no check
