"""Bad input gets a clear LLMInspectError, never a stack trace from inside torch."""

from __future__ import annotations

import numpy as np
import pytest

from llminspect import errors
from llminspect.analysis.audio import read_audio, read_wav
from llminspect.models.registry import sample_audio


def test_empty_text_everywhere(encoder, toy):
    for model in (encoder, toy):
        with pytest.raises(errors.EmptyInputError, match="empty"):
            model.trace("")
        with pytest.raises(errors.EmptyInputError):
            model.tokenize("")


def test_text_that_tokenizes_to_nothing_but_specials(encoder):
    with pytest.raises(errors.EmptyInputError, match="no tokens apart from special ones"):
        encoder.trace("   ")


def test_text_longer_than_the_context(encoder):
    with pytest.raises(errors.InputTooLongError, match="at most 512"):
        encoder.trace("word " * 600)


def test_toy_context_and_unknown_words(toy):
    with pytest.raises(errors.InputTooLongError, match="at most 32"):
        toy.trace("bird eats mouse " * 12)
    tr = toy.trace("purple bird eats mouse")  # unknown words become <unk>, visibly
    assert tr.source.strings[0] == "<unk>"


def test_audio_to_a_text_model_and_text_to_a_speech_model(toy, whisper):
    with pytest.raises(errors.WrongModalityError, match="reads text"):
        toy.trace(np.zeros(16000, dtype=np.float32))
    with pytest.raises(errors.WrongModalityError, match="reads text"):
        toy.trace(str(sample_audio("hello_world")))
    with pytest.raises(errors.WrongModalityError, match="speech model"):
        whisper.trace("hello world")


def test_decoder_refuses_a_target(decoder):
    with pytest.raises(errors.FamilyError, match="encoder-decoder"):
        decoder.trace("The capital of France is", target=" Paris")
    with pytest.raises(errors.FamilyError, match="encoder-decoder"):
        decoder.walk("The capital of France is", target=" Paris")


def test_empty_target(toy):
    with pytest.raises(errors.EmptyInputError, match="target is empty"):
        toy.trace("bird eats mouse", target="  ")


@pytest.mark.slow
def test_audio_too_long_or_empty(whisper):
    with pytest.raises(errors.InputTooLongError, match="at most 30 s"):
        whisper.trace(np.zeros(31 * 16000, dtype=np.float32))
    with pytest.raises(errors.EmptyInputError, match="audio is empty"):
        whisper.trace(np.zeros(0, dtype=np.float32))
    with pytest.raises(errors.InputError, match="1-D"):
        whisper.trace(np.zeros((2, 100), dtype=np.float32))


def test_wav_reading_and_resampling(tmp_path):
    clip = read_wav(sample_audio("quick_brown_fox"))
    assert clip.sample_rate == 16000 and clip.duration == pytest.approx(4.8, abs=0.01)
    assert -1.0 <= clip.waveform.min() < 0 < clip.waveform.max() <= 1.0
    tone = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
    resampled = read_audio(tone, sample_rate=44100)
    assert len(resampled.waveform) == 16000
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    np.testing.assert_allclose(resampled.waveform, expected, atol=0.01)
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(errors.InputError, match="not a PCM WAV"):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(errors.InputError, match="No audio file"):
        read_wav(tmp_path / "missing.wav")
    with pytest.raises(errors.InputError, match="quick_brown_fox"):
        sample_audio("nope")
