"""Checked inputs as plain data: what the user passed, made into what the model reads.

``prepare(m, source, target)`` checks the input once — text or audio as the model expects,
not empty, within the context — and returns an ``Inputs``: the tokens the (decoder) stack reads,
the source tokens or audio of an encoder-decoder, the tensors for the model's forward pass, and
for speech where the real audio ends. Every analysis (trace, walk, lens, rope, importance,
sampling, experts) takes an ``Inputs``; none goes back to the front door to ask again.

Words mean one thing across the API:
- ``text``: what an encoder or a decoder reads;
- ``source``: what an encoder-decoder's encoder reads (text, or audio for Whisper);
- ``target``: what the model writes — an encoder-decoder's decoder text, or the continuation of
  a decoder's text whose importance is explained;
- ``prompt``: the start of a text the model continues (sampling).

Example:
    >>> import llminspect as li
    >>> inputs = prepare(li.load("toy-seq2seq"), "happy bird eats mouse", "birdo gaja")
    >>> inputs.source.strings, inputs.tokens.strings, sorted(inputs.tensors)
    (['happy', 'bird', 'eats', 'mouse', '</s>'], ['<s>', 'birdo', 'gaja', '</s>'], ['decoder_input_ids', 'input_ids'])
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import torch

from llminspect.analysis import audio as audio_io
from llminspect.analysis.tokens import Tokens, check_text, encode, from_ids, special_token_ids, tokenize
from llminspect.errors import EmptyInputError, FamilyError, InputTooLongError, WrongModalityError
from llminspect.models.loading import quiet_transformers


@dataclass(frozen=True)
class Inputs:
    """One checked input: the tokens the (decoder) stack reads and the tensors the forward pass takes."""

    tokens: Tokens  # what the (decoder) stack reads
    tensors: dict[str, torch.Tensor]  # keyword arguments of model(...), on the model's device
    source: Tokens | audio_io.Audio | None = None  # an encoder-decoder's encoder input
    audio_positions: int | None = None  # encoder positions that hold real audio (the rest is padding)
    seconds_per_position: float | None = None  # audio time one encoder position stands for

    @property
    def encoder_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors the encoder reads (an encoder-decoder's ``input_ids`` or ``input_features``)."""
        return {name: value for name, value in self.tensors.items() if name != "decoder_input_ids"}

    @property
    def timing(self) -> dict:
        """Audio timing fields, for a Trace."""
        return {"audio_positions": self.audio_positions, "seconds_per_position": self.seconds_per_position}

    def with_tokens(self, m, ids: list[int]) -> Inputs:
        """The same source with other (decoder) token ids, e.g. after a sampling lab appends a token."""
        tokens = from_ids(m.tokenizer, ids)
        name = "decoder_input_ids" if "decoder_input_ids" in self.tensors else "input_ids"
        return replace(self, tokens=tokens, tensors={**self.tensors, name: torch.tensor([ids], device=m.device)})


def text_tokens(m, text, role: str = "text") -> Tokens:
    """Tokenize ``text`` for a forward pass, refusing audio, empty text and text over the context."""
    if audio_io.looks_like_audio(text):
        raise WrongModalityError(
            f"{m.name} reads text, but it was given audio. Pass a string, or load a speech model "
            "such as li.load('encoder-decoder') (Whisper) for audio."
        )
    tokens = tokenize(m.tokenizer, text)
    if all(tokens.special):
        raise EmptyInputError(f"The {role} {text!r} has no tokens apart from special ones: give some real text.")
    limit = m.max_tokens
    if limit is not None and len(tokens) > limit:
        raise InputTooLongError(
            f"The {role} is {len(tokens)} tokens long but {m.name} reads at most {limit}. "
            f"Shorten it (e.g. the first {limit // 2} tokens) or use a model with a longer context."
        )
    return tokens


def audio_features(m, source) -> tuple[audio_io.Audio, dict, dict]:
    """The clip, the encoder's input features, and where the real audio ends among its positions."""
    audio_io.check_audio_path(source)
    if isinstance(source, str) and not audio_io.looks_like_audio(source):
        raise WrongModalityError(
            f"{m.name} is a speech model: it reads audio, not text. Pass a 16 kHz array or a WAV path, "
            "e.g. llminspect.models.registry.sample_audio('quick_brown_fox'); for text use li.load('toy-seq2seq')."
        )
    clip = audio_io.read_audio(source)
    extractor = m.feature_extractor
    max_seconds = extractor.n_samples / extractor.sampling_rate
    if clip.duration > max_seconds:
        raise InputTooLongError(
            f"The audio lasts {clip.duration:.1f} s but {m.name} hears at most {max_seconds:.0f} s at a time: "
            "cut it shorter."
        )
    features = extractor(clip.waveform, sampling_rate=clip.sample_rate, return_tensors="pt")
    positions = m.config.max_source_positions
    seconds = max_seconds / positions
    timing = {"audio_positions": min(math.ceil(clip.duration / seconds), positions), "seconds_per_position": seconds}
    return clip, {"input_features": features.input_features.to(device=m.device, dtype=m.dtype)}, timing


def decoder_ids(m, text: str, complete: bool = True) -> list[int]:
    """An encoder-decoder's decoder tokens for ``text``: its start (Whisper: a prefix), the text, and
    the end token when ``complete`` (a lab continues an incomplete one).

    Example:
        >>> import llminspect as li
        >>> toy = li.load("toy-seq2seq")
        >>> decoder_ids(toy, "birdo gaja"), decoder_ids(toy, "birdo", complete=False)
        ([1, 7, 24, 2], [1, 7])
    """
    check_text(text, "target")
    tokenizer = m.tokenizer
    if m.modality == "audio":  # <|startoftranscript|><|notimestamps|>, then the text with its leading space
        prefix = list(tokenizer.prefix_tokens)
        body = " " + text.strip() if text.strip() else ""
        ids = encode(tokenizer, body, "target", add_special_tokens=False) if body else []
        return prefix + ids + ([tokenizer.eos_token_id] if complete else [])
    start = [m.config.decoder_start_token_id]
    if complete:
        return start + list(tokenizer(text_target=text).input_ids)
    return start + (encode(tokenizer, text, "prompt", add_special_tokens=False) if text else [])


def generated(m, encoder_tensors: dict, max_new_tokens: int = 64) -> Tokens:
    """The model's own greedy output for an encoder input (Whisper's prefix and end token put back)."""
    settings = copy.deepcopy(m.model.generation_config)  # greedy, whatever the model's defaults
    settings.update(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, max_length=None)
    with torch.no_grad(), quiet_transformers():
        ids = m.model.generate(**encoder_tensors, generation_config=settings)[0].tolist()
    if m.modality == "text":
        return from_ids(m.tokenizer, ids)
    special = special_token_ids(m.tokenizer)  # Whisper's generate returns the text tokens only
    body = [i for i in ids if i not in special]
    return from_ids(m.tokenizer, list(m.tokenizer.prefix_tokens) + body + [m.tokenizer.eos_token_id])


def prepare(m, source, target: str | None = None, *, max_new_tokens: int = 64, complete: bool = True) -> Inputs:
    """Check what the user passed and make it what the model reads.

    ``source`` is the text of an encoder or decoder, or an encoder-decoder's source (text, or
    audio for a speech model). ``target`` is an encoder-decoder's decoder text (its own greedy
    output when None; an unfinished start when ``complete=False``); decoders and encoders take none.
    """
    if m.family != "encoder-decoder":
        if target is not None:
            raise FamilyError(
                f"target= applies to encoder-decoder models; {m.name} is from the {m.family} family. "
                "For a decoder, put the continuation in the text itself."
            )
        tokens = text_tokens(m, source)
        return Inputs(tokens, {"input_ids": torch.tensor([tokens.ids], device=m.device)})
    timing = {}
    if m.modality == "audio":
        source_data, encoder_tensors, timing = audio_features(m, source)
    else:
        source_data = text_tokens(m, source, "source text")
        encoder_tensors = {"input_ids": torch.tensor([source_data.ids], device=m.device)}
    if target is not None and complete and not str(target).strip():
        raise EmptyInputError("The target is empty: give some text, or leave target=None to let the model write one.")
    if target is None:
        tokens = generated(m, encoder_tensors, max_new_tokens)
    else:
        tokens = from_ids(m.tokenizer, decoder_ids(m, target, complete))
    limit = m.max_target_tokens
    if limit is not None and len(tokens) > limit:
        raise InputTooLongError(f"The target is {len(tokens)} tokens long; {m.name}'s decoder reads at most {limit}.")
    tensors = {**encoder_tensors, "decoder_input_ids": torch.tensor([tokens.ids], device=m.device)}
    return Inputs(tokens, tensors, source_data, **timing)
