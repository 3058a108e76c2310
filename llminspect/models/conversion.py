"""One-time conversions of embedded models into ordinary transformers folders.

``registry.model_directory`` calls these once and caches the result; afterwards every load is a
plain ``from_pretrained`` of safetensors. Kept apart from the registry because they import torch
and transformers, which the registry itself must not.

Example:
    >>> from llminspect.models.registry import EMBEDDED, source_path
    >>> expand_gguf(source_path(EMBEDDED["decoder"]), Path("/tmp/smollm2"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from llminspect.errors import ModelFileError
from llminspect.models.whisper_ct2 import read_ct2_arrays, whisper_dimensions, whisper_state_dict


def expand_gguf(gguf_path: Path, out: Path) -> None:
    """Expand a quantized GGUF causal LM to float32 safetensors (exact: the same numbers as loading the GGUF)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, OSError, RuntimeError) as error:  # not GGUF, damaged, or an unknown architecture
        raise ModelFileError(
            f"transformers cannot expand {gguf_path} ({str(error).splitlines()[0][:200]}). It reads GGUF files of the "
            "architectures it knows (Llama, Mistral, Qwen2, Gemma, GPT-2, ...); otherwise use the model's "
            "safetensors folder."
        ) from error
    # A GGUF-loaded model refuses save_pretrained while it still carries its quantizer;
    # its weights are already dequantized, so dropping both is lossless.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def convert_whisper(folder: Path, out: Path) -> None:
    """Convert a CTranslate2 Whisper folder (model.bin, tokenizer.json, config.json) to transformers."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    spec, arrays = read_ct2_arrays(folder / "model.bin")
    if spec != "WhisperSpec":
        raise ModelFileError(f"{folder / 'model.bin'} holds a {spec!r}, not a Whisper model.")
    extra = json.loads((folder / "config.json").read_text())
    endoftext = "<|endoftext|>"
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"),
        bos_token=endoftext,
        eos_token=endoftext,
        unk_token=endoftext,
        pad_token=endoftext,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(f"<|{t}|>") for t in ("startoftranscript", "notimestamps", "startofprev")}
    eot = tokenizer.convert_tokens_to_ids(endoftext)
    dims = whisper_dimensions(arrays)
    config = WhisperConfig(
        **dims,
        decoder_start_token_id=ids["startoftranscript"],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        tie_word_embeddings=True,
    )
    model = WhisperForConditionalGeneration(config)
    state = {
        key: torch.from_numpy(np.asarray(value, dtype=np.float32)) for key, value in whisper_state_dict(arrays).items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise ModelFileError(f"Whisper conversion mismatch: missing {missing}, unexpected {unexpected}.")
    model.tie_weights()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["startoftranscript"],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        no_timestamps_token_id=ids["notimestamps"],
        prev_sot_token_id=ids["startofprev"],
        is_multilingual=dims["vocab_size"]
        >= 51865,  # English-only Whisper has 51864 suppress_tokens=extra["suppress_ids"],
        begin_suppress_tokens=extra["suppress_ids_begin"],
        alignment_heads=extra["alignment_heads"],
        max_length=dims["max_target_positions"],
        return_timestamps=False,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=dims["num_mel_bins"]).save_pretrained(out)
