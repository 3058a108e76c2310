"""load(): a model spec in, an ``Inspector`` out.

A spec is an embedded name ("encoder", "decoder", "encoder-decoder", "toy-seq2seq"), a local
model folder, or a hub id (online, or already in the hub cache). The family is read from the
config, never from the name. Models load with eager attention because the faster SDPA kernels
cannot report attention weights (transformers 5 then returns an empty tuple).

Example:
    >>> m = load_model("decoder")
    >>> m.family, m.config.num_key_value_heads
    ('decoder', 3)
"""

from __future__ import annotations

import contextlib
import difflib
import os
import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

from llminspect.errors import DeviceError, LLMInspectError, ModelFileError, RemoteCodeError, UnknownModelError
from llminspect.models.loaded import LoadedModel
from llminspect.models.preflight import check_files, check_memory
from llminspect.models.registry import EMBEDDED, gguf_directory, model_directory
from llminspect.models.streaming import open_streamed
from llminspect.models.structure import block_lists, detect_family


def _saved_without_head(config) -> bool:
    """True for a decoder saved as its bare stack (e.g. ``LlamaModel``) whose head is not its embeddings."""
    architectures = getattr(config, "architectures", None) or []
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    bare = bool(architectures) and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    return bare and not getattr(text, "tie_word_embeddings", False)


def resolve_device(device: str = "auto"):
    """``"auto"`` means cuda when a GPU is visible, else cpu; asking for a missing GPU is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise DeviceError(f"{device!r} is not a device name: use 'auto', 'cpu' or 'cuda'.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device={device!r} asks for a GPU, but torch sees none here (CPU-only build or no CUDA device). "
            "Use device='cpu' (every lesson runs on CPU) or device='auto'."
        )
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise DeviceError(f"device={device!r}: there are only {torch.cuda.device_count()} GPU(s) here.")
    return resolved


def resolve_dtype(dtype):
    """``"auto"`` is float32 (exact and safe on CPU); otherwise a torch dtype or its name."""
    import torch

    if dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise LLMInspectError(
            f"dtype={dtype!r} is not a floating-point torch dtype: use 'float32', 'bfloat16' or 'float16'."
        )
    return resolved


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the model hub answers within ``timeout`` s (False at once when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _embedded_list() -> str:
    return ", ".join(f"{name!r} ({model.description})" for name, model in EMBEDDED.items())


def resolve_spec(spec: str | os.PathLike) -> tuple[str, dict]:
    """Where to load from, and the ``from_pretrained`` options that go with it."""
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise UnknownModelError(
            f"Give a model name, folder or hub id; got {spec!r}. Embedded models: {_embedded_list()}."
        )
    text = str(spec)
    if text in EMBEDDED:
        return str(model_directory(text)), {}
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return str(gguf_directory(path)), {}
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UnknownModelError(f"The folder {path} has no config.json, so it is not a transformers model folder.")
        return str(path), {}
    if path.is_file():
        raise UnknownModelError(
            f"{path} is a file; llminspect loads a model folder (config.json + weights + tokenizer), a .gguf file, "
            "an embedded name or a hub id. Give the folder that holds this file."
        )
    if text.startswith((".", "/", "~")) or text.count("/") > 1:  # hub ids are "name" or "owner/name"
        raise UnknownModelError(f"There is no model folder or file at {path}.")
    # A hub id: use the network when it answers, else whatever the hub cache already holds.
    return text, {"local_files_only": not hub_reachable()}


@contextlib.contextmanager
def quiet_transformers():
    """Hide transformers' (and accelerate's) progress bars and chatter while loading (errors still raise)."""
    import logging as std_logging

    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    accelerate_logger = std_logging.getLogger("accelerate")  # "Some parameters are on the meta device..."
    accelerate_level = accelerate_logger.level
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    accelerate_logger.setLevel(std_logging.ERROR)
    try:
        with warnings.catch_warnings():
            # a device map naming a model-level buffer (BART's final_logits_bias) works but warns
            warnings.filterwarnings("ignore", message="The following device_map keys do not match")
            yield
    finally:
        accelerate_logger.setLevel(accelerate_level)
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _model_class(config, family: str):
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES

    if family == "encoder-decoder":
        speech = config.model_type in MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES
        return transformers.AutoModelForSpeechSeq2Seq if speech else transformers.AutoModelForSeq2SeqLM
    if family == "decoder":
        # A bare stack has no head weights: loading it as a causal LM would invent a random head.
        return transformers.AutoModel if _saved_without_head(config) else transformers.AutoModelForCausalLM
    masked = any(a.endswith("ForMaskedLM") for a in (config.architectures or []))
    return transformers.AutoModelForMaskedLM if masked else transformers.AutoModel


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model", "source.spm")  # fmt: skip


def load_tokenizer(source: str, options: dict):
    """The model's tokenizer, or a clear error when the folder has none (transformers would blame sentencepiece)."""
    import transformers

    if Path(source).is_dir() and not any((Path(source) / name).exists() for name in TOKENIZER_FILES):
        raise ModelFileError(
            f"{source} holds a model but no tokenizer files (none of {', '.join(TOKENIZER_FILES)}). Save the "
            "tokenizer the model was trained with into the same folder, e.g. "
            "AutoTokenizer.from_pretrained(original).save_pretrained(folder)."
        )
    try:
        return transformers.AutoTokenizer.from_pretrained(source, **options)
    except (OSError, ValueError, TypeError) as error:
        raise ModelFileError(
            f"transformers could not read the tokenizer of {source}: {str(error).splitlines()[0][:300]}"
        ) from error


OFFLOAD = ("cpu", "disk")


def empty_model(config, model_class, dtype=None):
    """The model built on the meta device: every module and shape, no memory, no weights read.

    Example:
        >>> import transformers
        >>> from llminspect.models.registry import model_directory
        >>> config = transformers.AutoConfig.from_pretrained(model_directory("toy-seq2seq"))
        >>> empty_model(config, transformers.AutoModelForSeq2SeqLM).lm_head.weight.device.type
        'meta'
    """
    import accelerate

    options = {"attn_implementation": "eager", "dtype": dtype}
    with accelerate.init_empty_weights():
        # an Auto class builds through from_config, a concrete model class through _from_config
        build = model_class.from_config if hasattr(model_class, "from_config") else model_class._from_config
        return build(config, **options)


def offload_map(empty, keep_on, blocks_on: str) -> dict[str, str]:
    """A device map putting every transformer block on ``blocks_on`` ("cpu" or "disk") and the rest on ``keep_on``.

    Read from an ``empty_model``, so it costs no memory. accelerate then moves each block to
    ``keep_on`` only while it runs, and drops it after.

    Example:
        >>> import transformers
        >>> from llminspect.models.registry import model_directory
        >>> config = transformers.AutoConfig.from_pretrained(model_directory("toy-seq2seq"))
        >>> plan = offload_map(empty_model(config, transformers.AutoModelForSeq2SeqLM), "cpu", "disk")
        >>> plan["model.encoder.layers.0"], plan["lm_head"]
        ('disk', 'cpu')
    """
    stacks = [path for path, _ in block_lists(empty)]
    plan: dict[str, str] = {}

    def place(prefix: str, module) -> None:
        own = [name for name, _ in module.named_parameters(recurse=False)] + [
            name for name, _ in module.named_buffers(recurse=False)
        ]  # e.g. BART's final_logits_bias, held by the model itself
        plan.update({f"{prefix}{name}": str(keep_on) for name in own})
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if path in stacks:
                plan.update({f"{path}.{i}": blocks_on for i in range(len(child))})
            elif any(stack.startswith(path + ".") for stack in stacks):
                place(path + ".", child)
            else:
                plan[path] = str(keep_on)

    place("", empty)
    return plan


def _check_placement(offload, device_map) -> None:
    if offload is not None and offload not in OFFLOAD:
        raise LLMInspectError(f"offload={offload!r}: use 'disk' (blocks stay in the files), 'cpu', or None.")
    if offload is not None and device_map is not None:
        raise LLMInspectError("Give offload= or device_map=, not both: offload builds its own device map.")


def _offload_options(empty, source: str, device, offload, device_map) -> dict:
    """``from_pretrained`` options for ``offload=`` (read from ``empty``) or ``device_map=``; empty for a plain load."""
    if device_map is not None:
        return {"device_map": device_map}
    if offload is None:
        return {}
    if offload == "disk" and Path(source).is_dir() and not list(Path(source).glob("*.safetensors")):
        raise ModelFileError(
            f"offload='disk' reads each block from the model's safetensors files while it runs, and {source} has "
            "none (only pickle checkpoints). Use offload='cpu', or convert the model to safetensors."
        )
    return {"device_map": offload_map(empty, device, offload)}


def load_model(
    spec: str | os.PathLike = "decoder",
    device: str = "auto",
    dtype="auto",
    *,
    offload=None,
    device_map=None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a model and its tokenizer (and a speech model's feature extractor) as a ``LoadedModel``.

    ``offload="disk"`` keeps every transformer block in the model's safetensors files (memory-mapped)
    and brings each one in only while it runs; ``offload="cpu"`` keeps blocks in CPU memory and
    moves each to the GPU while it runs. Either way traces and walks come out the same as with a
    full load, with a per-layer progress bar. ``device_map="auto"`` spreads a model over several
    GPUs (accelerate's placement).

    Safe by default: weights load from safetensors only (``allow_pickle=True`` accepts pickle
    checkpoints, with a warning) and a model's own Python code never runs unless
    ``trust_remote_code=True``. A model that would not fit in free memory is refused before
    loading, with what to do instead.

    Example:
        >>> load_model("toy-seq2seq", device="cpu").family
        'encoder-decoder'
        >>> load_model("decoder", offload="disk").offloaded
        True
    """
    import transformers

    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    _check_placement(offload, device_map)
    source, options = resolve_spec(spec)
    options["trust_remote_code"] = trust_remote_code
    check_files(source, allow_pickle)
    if offload is None and device_map is None:
        check_memory(source, torch_dtype, torch_device)
    with quiet_transformers():
        config = _read_config(spec, source, options)
        model_class = _model_class(config, detect_family(config))
        empty = empty_model(config, model_class, torch_dtype) if offload is not None else None
        placement = _offload_options(empty, source, torch_device, offload, device_map)
        model = None
        if offload == "disk" and Path(source).is_dir():  # blocks left in the files, not read while loading
            model = open_streamed(source, empty, torch_device, torch_dtype, placement["device_map"])
        if model is None:
            model = model_class.from_pretrained(source, config=config, dtype=torch_dtype, attn_implementation="eager",
                                                use_safetensors=None if allow_pickle else True, **placement,
                                                **options)  # fmt: skip
        tokenizer = load_tokenizer(source, options)
        feature_extractor = None
        if model.main_input_name == "input_features":
            feature_extractor = transformers.AutoFeatureExtractor.from_pretrained(source, **options)
    if not placement:
        model = model.to(torch_device)
    return LoadedModel(model, tokenizer, name=str(spec), feature_extractor=feature_extractor)


def _read_config(spec, source: str, options: dict):
    """The model's config, or a clear error: not found (offline, with a close embedded name), or needs remote code."""
    import transformers

    try:
        return transformers.AutoConfig.from_pretrained(source, **options)
    except OSError as error:
        if options.get("local_files_only"):
            close = difflib.get_close_matches(str(spec), list(EMBEDDED), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownModelError(
                f"{str(spec)!r} is not an embedded model name or a local folder, and the model hub cannot be "
                f"reached (offline) and has no cached copy.{hint} Embedded models that work offline: "
                f"{_embedded_list()}."
            ) from error
        raise UnknownModelError(f"Could not load a model config from {str(spec)!r}: {error}") from error
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise RemoteCodeError(
            f"{str(spec)!r} needs its own Python code to run, and llminspect does not run downloaded code by "
            "default. Read that code first; pass trust_remote_code=True only if you trust it."
        ) from error
