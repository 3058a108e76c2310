"""Anatomy of famous models from their configs: exact parameter counts per part, memory arithmetic.

Llama 2 70B or Mixtral 8x7B will not fit a laptop, but their *architecture* fits in a config
file. ``llminspect/assets/architectures/`` ships the published hyper-parameters as transformers config
JSON (plus the embedded models'); ``anatomy`` builds each model on PyTorch's meta device — every
tensor has a shape but no memory — and counts its parameters exactly, part by part.

Memory a user needs before loading: weights at fp32/bf16/int8/int4 (``weight_bytes``), the
KV cache a generation keeps per token (``kv_cache_bytes``: 2 tensors x layers x key/value heads
x head size), and whether it fits a GPU — if not, how many blocks would stream per forward pass
with ``load(..., offload=...)`` (``memory_plan``).

Example:
    >>> a = anatomy("llama-2-7b")
    >>> round(a.total / 1e9, 2), a.attention_kind, a.positions
    (6.74, 'MHA', 'rotary')
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llminspect.errors import LLMInspectError, UnknownModelError
from llminspect.models.architecture import position_kind
from llminspect.models.registry import ASSETS
from llminspect.models.structure import block_lists, detect_family, kind_of

ARCHITECTURES = ASSETS / "architectures"
BYTES_PER_PARAMETER = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "int4": 0.5}
# Anatomy groups what ``models.structure.kind_of`` tells apart into the parts people count.
PART_OF_KIND = {"embedding": "embeddings", "positions": "embeddings", "attention": "attention",
                "cross-attention": "attention", "mlp": "MLP", "experts": "experts", "router": "router", "norm": "norms",
                "head": "head", "other": "other"}  # fmt: skip
PARTS = tuple(dict.fromkeys(PART_OF_KIND.values()))


def part_of(name: str) -> str:
    """Which part a parameter belongs to, from its name (the head is an LM head, a masked-LM head or a pooler).

    Example:
        >>> [part_of(n) for n in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.experts.down_proj",
        ...                       "model.norm.weight", "lm_head.weight", "model.layers.0.mlp.gate.weight")]
        ['attention', 'experts', 'norms', 'head', 'router']
    """
    return PART_OF_KIND[kind_of(name)]


@dataclass
class Anatomy:
    """One architecture, counted: sizes from the config, parameters per part from the meta-device model."""

    key: str
    name: str
    family: str
    architecture: str
    layers: int  # blocks per stack (encoder-decoders: encoder + decoder)
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocabulary: int
    context: int | None
    positions: str  # "learned", "rotary", "relative (T5)", "sinusoidal + learned", ...
    sliding_window: int | None
    experts: int | None
    experts_per_token: int | None
    tied_head: bool
    parts: dict[str, int]
    block_parameters: int  # the largest block
    blocks_parameters: int  # all blocks together (the rest is embeddings, final norms, head)
    published: float | None = None
    published_active: float | None = None
    reference: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def active(self) -> int:
        """Parameters one token runs through: a mixture of experts uses ``experts_per_token`` of its experts."""
        if not self.experts:
            return self.total
        return self.total - round(self.parts["experts"] * (1 - self.experts_per_token / self.experts))

    @property
    def attention_kind(self) -> str:
        """MHA (a key/value head per query head), MQA (one shared), or GQA (groups of query heads share one)."""
        return "MHA" if self.kv_heads == self.heads else "MQA" if self.kv_heads == 1 else "GQA"


def shipped() -> list[str]:
    """The architecture names ``anatomy`` knows (files in ``llminspect/assets/architectures``)."""
    return sorted(path.stem for path in ARCHITECTURES.glob("*.json"))


def load_config(name: str | Path):
    """(transformers config, llminspect's notes) for a shipped name or a config JSON file."""
    import transformers

    path = Path(name).expanduser()
    if path.is_dir():  # a model folder: its config.json
        path = path / "config.json"
    elif not path.suffix == ".json":
        path = ARCHITECTURES / f"{name}.json"
    if not path.exists():
        close = difflib.get_close_matches(str(name), shipped(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(
            f"No architecture {str(name)!r}.{hint} Give a shipped name ({', '.join(shipped())}), a model folder "
            "with a config.json, or the path of a config .json file."
        )
    data = json.loads(path.read_text())
    notes = data.pop("llminspect", {})
    try:
        config = transformers.AutoConfig.for_model(**data)
    except Exception as error:  # unknown model_type, or a config validator naming the field that is wrong
        raise LLMInspectError(f"transformers cannot read the config {path.name}: {error}".replace("\n", " ")) from error
    return config, notes


def _build_on_meta(config, key: str):
    import transformers

    architectures = getattr(config, "architectures", None) or []
    model_class = getattr(transformers, architectures[0], None) if architectures else None
    try:
        with torch.device("meta"):
            if model_class is not None:
                return model_class(config)
            return transformers.AutoModel.from_config(config)
    except (ValueError, KeyError, TypeError, AttributeError, AssertionError, RuntimeError) as error:
        raise LLMInspectError(
            f"transformers cannot build {key!r} from its config: {error!r}. Fix that field in {key}.json "
            "(names and sizes must be ones the architecture accepts)."
        ) from error


def _rope_theta(config) -> float | None:
    parameters = getattr(config, "rope_parameters", None) or {}
    return parameters.get("rope_theta") if isinstance(parameters, dict) else getattr(config, "rope_theta", None)


def anatomy(name: str | Path) -> Anatomy:
    """Build architecture ``name`` on the meta device and count its parameters per part."""
    config, notes = load_config(name)
    key = Path(name).name if Path(name).is_dir() else Path(name).stem
    model = _build_on_meta(config, key)
    parts = dict.fromkeys(PARTS, 0)
    for parameter_name, parameter in model.named_parameters():  # tied weights appear once
        parts[part_of(parameter_name)] += parameter.numel()
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = getattr(text, "num_attention_heads", None) or getattr(text, "encoder_attention_heads", None)
    heads = heads or getattr(text, "num_heads", None) or text.n_head
    kv_heads = getattr(text, "num_key_value_heads", None) or (1 if getattr(text, "multi_query", False) else heads)
    hidden = getattr(text, "hidden_size", None) or getattr(text, "d_model", None) or text.n_embd
    head_dim = getattr(text, "head_dim", None) or getattr(text, "d_kv", None) or hidden // heads
    stacks = block_lists(model)
    blocks = [block for _, stack in stacks for block in stack]
    sizes = [sum(p.numel() for p in block.parameters()) for block in blocks]
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    experts = getattr(text, "num_local_experts", None) or getattr(text, "num_experts", None)
    return Anatomy(
        key=key,
        name=notes.get("name", key),
        family=detect_family(config),
        architecture=type(model).__name__,
        layers=len(blocks),
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocabulary=text.vocab_size,
        context=getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None),
        positions=position_kind(model, config),
        sliding_window=getattr(text, "sliding_window", None),
        experts=experts,
        experts_per_token=getattr(text, "num_experts_per_tok", None) if experts else None,
        tied_head=head is not None and embedding is not None and head.weight is embedding.weight,
        parts=parts,
        block_parameters=max(sizes),
        blocks_parameters=sum(sizes),
        published=notes.get("published_parameters"),
        published_active=notes.get("published_active_parameters"),
        reference=notes.get("reference", ""),
        extra={"year": notes.get("year"), "decoder layers": len(stacks[-1][1]), "rope theta": _rope_theta(text)},
    )


def weight_bytes(a: Anatomy, dtype: str = "bfloat16") -> float:
    """Bytes the weights take at ``dtype`` (float32, bfloat16, float16, int8, int4).

    Example:
        >>> round(weight_bytes(anatomy("llama-2-7b"), "bfloat16") / 2**30, 1)
        12.6
    """
    if dtype not in BYTES_PER_PARAMETER:
        raise LLMInspectError(f"dtype={dtype!r}: use one of {', '.join(BYTES_PER_PARAMETER)}.")
    return a.total * BYTES_PER_PARAMETER[dtype]


def kv_cache_bytes(a: Anatomy, tokens: int = 1, dtype: str = "bfloat16", kv_heads: int | None = None) -> float:
    """Bytes of the key/value cache a decoder keeps for ``tokens`` tokens (keys and values, every decoder layer).

    A sliding window caps the tokens kept. ``kv_heads`` overrides the model's, e.g. ``a.heads`` to
    ask what full multi-head attention would cost.

    Example:
        >>> a = anatomy("llama-2-70b")
        >>> kv_cache_bytes(a, kv_heads=a.heads) / kv_cache_bytes(a)
        8.0
    """
    if a.family == "encoder":
        return 0.0
    kept = min(tokens, a.sliding_window) if a.sliding_window else tokens
    layers = a.extra["decoder layers"]
    return 2 * layers * (kv_heads or a.kv_heads) * a.head_dim * BYTES_PER_PARAMETER[dtype] * kept


@dataclass
class MemoryPlan:
    """Whether a model fits one GPU at a dtype and context, and what would stream per forward pass if not."""

    gpu_bytes: float
    weights: float
    kv_cache: float
    fits: bool
    resident_blocks: int  # blocks that fit next to the embeddings, head, cache and a working margin
    streamed_blocks: int
    streamed_bytes_per_pass: float  # what offload= moves to the GPU for every forward pass


def memory_plan(a: Anatomy, gpu_gib: float, dtype: str = "bfloat16", context: int = 4096, margin: float = 0.1):
    """Fit ``a`` on a ``gpu_gib`` GiB GPU; ``margin`` keeps that share free for activations and the framework.

    Example:
        >>> plan = memory_plan(anatomy("llama-2-70b"), gpu_gib=24)
        >>> plan.fits, plan.resident_blocks, plan.streamed_blocks
        (False, 12, 68)
    """
    gpu = gpu_gib * 2**30
    per = BYTES_PER_PARAMETER[dtype]
    weights, cache = weight_bytes(a, dtype), kv_cache_bytes(a, context, dtype)
    usable = gpu * (1 - margin)
    fits = weights + cache <= usable
    block = a.block_parameters * per  # the largest block: a conservative unit of streaming
    outside = (a.total - a.blocks_parameters) * per  # embeddings, final norm, head stay on the GPU
    room = usable - cache - outside
    resident = a.layers if fits else max(0, min(a.layers, int(room // block)))
    streamed = a.layers - resident
    return MemoryPlan(gpu, weights, cache, fits, resident, streamed, streamed * block)
