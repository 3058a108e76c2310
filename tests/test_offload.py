"""Streaming blocks from disk gives the same trace as a full load, with feedback per layer."""

from __future__ import annotations

import pytest
import torch
import transformers

import llminspect as li
from llminspect.errors import FamilyError, LLMInspectError, ModelFileError
from llminspect.models.loading import empty_model, offload_map
from llminspect.models.registry import model_directory

TEXT = "The quick brown fox jumps over the lazy dog"
FLOAT32 = {"atol": 1e-5, "rtol": 1e-4}  # two separate forward passes: float32 rounding may differ between CPUs


@pytest.fixture(scope="module")
def streamed():
    return li.load("decoder", device="cpu", offload="disk")


def test_offload_map_puts_every_block_on_disk_and_the_rest_on_the_device():
    config = transformers.AutoConfig.from_pretrained(model_directory("decoder"))
    plan = offload_map(empty_model(config, transformers.AutoModelForCausalLM), "cpu", "disk")
    blocks = {key for key, where in plan.items() if where == "disk"}
    assert blocks == {f"model.layers.{i}" for i in range(config.num_hidden_layers)}
    assert {key for key, where in plan.items() if where == "cpu"} == {
        "model.embed_tokens", "model.norm", "model.rotary_emb", "lm_head"
    }  # fmt: skip


def test_streamed_trace_equals_a_full_load(streamed, decoder):
    assert streamed.offloaded and not decoder.offloaded
    assert set(streamed.model.hf_device_map.values()) == {"cpu", "disk"}
    assert streamed.model.model.layers[0].mlp.up_proj.weight.device.type == "meta"  # not held in memory
    # Exactness is a claim about the weights: the bytes a block streams in are the full load's tensors.
    from safetensors.torch import load_file

    full = decoder.model.state_dict()
    for name, tensor in load_file(model_directory("decoder") / "model.safetensors").items():
        if name.startswith("model.layers."):
            assert torch.equal(tensor.float(), full[name]), name
    # The outputs come from two forward passes over differently placed memory: equal within float32.
    a, b = streamed.trace(TEXT, progress=False), decoder.trace(TEXT)
    torch.testing.assert_close(a.hidden_states, b.hidden_states, **FLOAT32)
    torch.testing.assert_close(a.attentions, b.attentions, **FLOAT32)
    torch.testing.assert_close(a.logits, b.logits, **FLOAT32)


def test_streamed_walk_and_its_refusal_of_the_by_hand_walk(streamed, decoder):
    walk = streamed.walk(TEXT, progress=False)
    torch.testing.assert_close(walk.logits, decoder.trace(TEXT).logits, **FLOAT32)
    with pytest.raises(FamilyError, match="how='hooks'"):
        streamed.walk(TEXT, how="by hand")


def test_streamed_encoder_decoder_equals_a_full_load(toy):
    streamed = li.load("toy-seq2seq", offload="disk")
    a, b = streamed.trace("happy bird eats mouse", progress=False), toy.trace("happy bird eats mouse")
    assert a.tokens.ids == b.tokens.ids
    torch.testing.assert_close(a.cross_attentions, b.cross_attentions, **FLOAT32)
    torch.testing.assert_close(a.encoder_hidden_states, b.encoder_hidden_states, **FLOAT32)


def test_progress_bar_reports_each_layer_with_its_time(streamed, capsys):
    streamed.trace(TEXT)  # offloaded: the bar is on by default
    err = capsys.readouterr().err
    assert "30/30" in err and "model.layers.29:" in err
    timing = streamed.layer_timing
    assert timing.names == [f"model.layers.{i}" for i in range(30)]
    assert all(seconds > 0 for seconds in timing.seconds) and timing.total == pytest.approx(sum(timing.seconds))


def test_full_load_times_layers_quietly(decoder, capsys):
    decoder.trace(TEXT)
    assert "layers" not in capsys.readouterr().err
    assert len(decoder.layer_timing.seconds) == 30


def test_offload_options_are_checked(tmp_path, tiny):
    with pytest.raises(LLMInspectError, match="'disk'"):
        li.load("decoder", offload="gpu")
    with pytest.raises(LLMInspectError, match="not both"):
        li.load("decoder", offload="disk", device_map="auto")
    model = li.load(tiny("gpt2")).model
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelFileError, match="safetensors"):
        li.load(str(tmp_path), offload="disk")


def test_device_map_auto_on_a_cpu_machine_places_everything_on_the_cpu():
    m = li.load("toy-seq2seq", device_map="auto")
    assert set(getattr(m.model, "hf_device_map", {"": "cpu"}).values()) == {"cpu"} and not m.offloaded
    assert m.device.type == "cpu"
    assert m.trace("happy bird").tokens.strings == ["<s>", "birdo", "gaja", "</s>"]


def test_streamed_open_leaves_blocks_in_the_files_for_every_embedded_model():
    from llminspect.models.loading import _model_class, quiet_transformers
    from llminspect.models.streaming import open_streamed
    from llminspect.models.structure import detect_family

    for name in ("encoder", "decoder", "encoder-decoder", "toy-seq2seq"):
        folder = model_directory(name)
        config = transformers.AutoConfig.from_pretrained(folder)
        model_class = _model_class(config, detect_family(config))
        empty = empty_model(config, model_class, torch.float32)
        plan = offload_map(empty, "cpu", "disk")
        with quiet_transformers():
            model = open_streamed(folder, empty, torch.device("cpu"), torch.float32, plan)
        assert model is not None, name
        on_disk = [n for n, p in model.named_parameters() if p.device.type == "meta"]
        assert on_disk and all(any(n.startswith(k + ".") for k, w in plan.items() if w == "disk") for n in on_disk)


def test_checkpoints_with_other_tensor_names_fall_back_to_from_pretrained(tmp_path, tiny, monkeypatch):
    import llminspect.models.loading

    opened = []
    original = llminspect.models.loading.open_streamed
    loading = llminspect.models.loading
    monkeypatch.setattr(loading, "open_streamed", lambda *a: opened.append(original(*a)) or opened[-1])
    from safetensors.torch import load_file, save_file

    full = li.load(tiny("gpt2"))
    model = full.model
    model.save_pretrained(tmp_path)
    full.tokenizer.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")  # old GPT-2 files name tensors without "transformer."
    save_file({k.removeprefix("transformer."): v for k, v in tensors.items()}, tmp_path / "model.safetensors")
    streamed = li.load(str(tmp_path), offload="disk")
    assert opened == [None] and streamed.offloaded  # names did not match: from_pretrained loaded it
    ids = torch.tensor([streamed.tokenize(TEXT).ids])
    with torch.no_grad():
        expected = model(ids).logits[0]
    torch.testing.assert_close(streamed.trace(TEXT, progress=False).logits, expected, atol=1e-5, rtol=1e-4)
