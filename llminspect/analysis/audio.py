"""Speech input for Whisper-like models: read a WAV file or take an array, at 16 kHz mono.

Example:
    >>> from llminspect.models.registry import sample_audio
    >>> clip = read_audio(sample_audio("quick_brown_fox"))
    >>> clip.sample_rate, round(clip.duration, 1)
    (16000, 4.8)
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llminspect.errors import EmptyInputError, InputError

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = (".wav", ".wave")
SOUND_FILE_SUFFIXES = AUDIO_SUFFIXES + (".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".webm")


@dataclass(frozen=True)
class Audio:
    """A mono float waveform in [-1, 1] at ``sample_rate`` Hz."""

    waveform: np.ndarray
    sample_rate: int = SAMPLE_RATE
    source: str = "array"

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.waveform) / self.sample_rate


def read_wav(path: str | Path) -> Audio:
    """Read a PCM WAV file (8/16/32-bit, any channels and rate) as 16 kHz mono."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"No audio file at {path}.")
    try:
        with wave.open(str(path), "rb") as handle:
            width, channels, rate = handle.getsampwidth(), handle.getnchannels(), handle.getframerate()
            raw = handle.readframes(handle.getnframes())
    except (wave.Error, EOFError) as error:
        raise InputError(
            f"{path} is not a PCM WAV file ({error}); convert it, e.g. sox in.mp3 -r 16000 -c 1 out.wav"
        ) from error
    formats = {1: ("u1", 128.0, 128.0), 2: ("<i2", 0.0, 32768.0), 4: ("<i4", 0.0, 2147483648.0)}
    if width not in formats:
        raise InputError(f"{path}: {8 * width}-bit samples are not supported; use 16-bit PCM.")
    dtype, offset, scale = formats[width]
    samples = (np.frombuffer(raw, dtype=dtype).astype(np.float32) - offset) / scale
    mono = samples.reshape(-1, channels).mean(axis=1)
    return Audio(resample(mono, rate), SAMPLE_RATE, str(path))


def resample(waveform: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 16 kHz by linear interpolation (enough for speech recognition demos)."""
    if rate == SAMPLE_RATE:
        return waveform.astype(np.float32)
    times = np.arange(int(len(waveform) * SAMPLE_RATE / rate)) / SAMPLE_RATE
    return np.interp(times, np.arange(len(waveform)) / rate, waveform).astype(np.float32)


def read_audio(audio, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Accept a WAV path, an ``Audio``, or a 1-D array of samples at ``sample_rate``."""
    if isinstance(audio, Audio):
        clip = audio
    elif isinstance(audio, (str, Path)):
        clip = read_wav(audio)
    else:
        array = np.asarray(audio, dtype=np.float32)
        if array.ndim != 1:
            raise InputError(f"Audio must be a 1-D array of mono samples; got shape {array.shape}.")
        clip = Audio(resample(array, sample_rate), SAMPLE_RATE)
    if len(clip.waveform) == 0:
        raise EmptyInputError("The audio is empty: give at least a fraction of a second of sound.")
    return clip


def check_audio_path(value) -> None:
    """A path naming a sound file must exist, and be a WAV file: say so before anything else.

    Example:
        >>> check_audio_path("no/such/clip.wav")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        llminspect.errors.InputError: There is no audio file at no/such/clip.wav. Check the path ...
    """
    if not isinstance(value, (str, Path)) or Path(value).suffix.lower() not in SOUND_FILE_SUFFIXES:
        return
    path = Path(value).expanduser()
    if not path.is_file():
        raise InputError(
            f"There is no audio file at {value}. Check the path (relative paths start in the notebook's folder)."
        )
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise InputError(f"{value} is not a WAV file: convert it first, e.g. sox {path.name} -r 16000 -c 1 clip.wav")


def looks_like_audio(value) -> bool:
    """Whether ``value`` is audio rather than text: an array, an ``Audio``, a Path or a str naming a WAV file."""
    if isinstance(value, str):
        return value.lower().endswith(AUDIO_SUFFIXES) and Path(value).is_file()
    return isinstance(value, (Audio, Path, np.ndarray, list, tuple)) or hasattr(value, "__array__")
