"""How a transformers model is built: its stacks of blocks, its backbone and head, what each part does.

One home for reading a model's structure, used by loading (offload plans), progress bars, the
walk, the lens, RoPE capture and anatomy:
- ``block_lists``: the ``ModuleList``s of repeated blocks (one per stack; two in an encoder-decoder);
- ``head_prefix``: where the backbone ends and the head (``lm_head``, BERT's ``cls``) begins;
- ``kind_of``: what a module or parameter does, from its dotted name — one vocabulary for the
  walk's steps and for anatomy's parameter counts.

Example:
    >>> [kind_of(n) for n in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.experts.down_proj",
    ...                       "model.norm.weight", "lm_head.weight", "model.layers.0.mlp.gate.weight", "wpe")]
    ['attention', 'experts', 'norm', 'head', 'router', 'positions']
"""

from __future__ import annotations

import torch

from llminspect.errors import LLMInspectError

KINDS = ("embedding", "positions", "attention", "cross-attention", "norm", "mlp", "experts", "router", "head", "other")
# Words in a name, checked in this order (first match wins). Labels for people: no computation depends on them.
_WORDS = (
    ("cross-attention", ("encoder_attn", "crossattention", "cross_attn", "encdecattention")),
    ("positions", ("rotary", "position", "wpe")),
    ("attention", ("attn", "attention")),
    ("head", ("lm_head", "proj_out", "pooler", "final_logits_bias", "embed_out")),
    ("mlp", ("mlp", "fc", "intermediate", "output", "feed_forward", "ffn", "dense")),
    ("embedding", ("embed", "wte", "shared", "conv", "token_type")),
)


def kind_of(name: str) -> str:
    """What the module or parameter called ``name`` (a dotted path) does: one of ``KINDS``."""
    lowered = name.lower().removesuffix(".weight").removesuffix(".bias")
    last = lowered.rsplit(".", 1)[-1]
    if "norm" in last or last.startswith("ln"):
        return "norm"
    if ".experts." in f".{lowered}.":
        return "experts"
    if lowered.endswith(("mlp.gate", "block_sparse_moe.gate")) or ".router" in lowered:
        return "router"
    if lowered.startswith("cls.") or ".cls." in lowered:  # BERT's masked-LM head
        return "head"
    return next((kind for kind, words in _WORDS if any(word in lowered for word in words)), "other")


def block_lists(model) -> list[tuple[str, torch.nn.ModuleList]]:
    """The model's stacks of transformer blocks: each ``ModuleList`` of repeated modules, outermost first.

    Example:
        >>> import llminspect as li
        >>> [name for name, _ in block_lists(li.load("toy-seq2seq").model)]
        ['model.encoder.layers', 'model.decoder.layers']
    """
    found = []
    for name, module in model.named_modules():
        nested = any(name.startswith(outer + ".") for outer, _ in found)
        if isinstance(module, torch.nn.ModuleList) and len(module) and not nested:
            if len({type(child) for child in module}) == 1 and any(p.numel() for p in module.parameters()):
                found.append((name, module))
    if not found:
        raise LLMInspectError(f"{type(model).__name__} has no list of transformer blocks that llminspect can find.")
    return found


def head_prefix(model) -> str | None:
    """The path prefix of the backbone inside a model with a head ("model.", "bert."), or None for a bare model.

    Everything outside the backbone (``lm_head``, BERT's ``cls`` masked-LM head) is the model's head.
    """
    base = getattr(model, "base_model", model)
    if base is model:
        return None
    return next((f"{name}." for name, module in model.named_children() if module is base), None)


def has_state(module) -> bool:
    """Whether a module holds parameters or buffers (dropout and activations hold none)."""
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def detect_family(config) -> str:
    """ "encoder", "decoder" or "encoder-decoder", from a transformers config.

    An architecture that only exists as a decoder (Llama, GPT-2, ...) is a decoder even when it was
    saved without its language-model head (``architectures: ["LlamaModel"]``).

    Example:
        >>> from transformers import BertConfig, GPT2Config, LlamaConfig, T5Config
        >>> [detect_family(c()) for c in (BertConfig, GPT2Config, T5Config)]
        ['encoder', 'decoder', 'encoder-decoder']
        >>> detect_family(LlamaConfig(architectures=["LlamaModel"]))
        'decoder'
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    architectures = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures) or getattr(config, "is_decoder", False):
        return "decoder"
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if causal and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "decoder"  # a decoder-only architecture, whatever class it was saved from
    return "encoder"
