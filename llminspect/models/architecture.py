"""One description of a loaded model's architecture: its stacks, which one writes, heads and positions.

Analyses ask the same few questions of every model — which stack of blocks writes the text,
how many query and key/value heads each stack has and how wide a head is, where positions come
from. ``describe(model)`` answers them once, from the model's structure (``models.structure``)
and config, for all three families:

- an encoder or a decoder has one stack (named ``""``); an encoder-decoder has ``"encoder"``
  and ``"decoder"``, and the decoder is the stack that writes;
- ``heads`` / ``kv_heads``: fewer key/value heads than query heads is grouped-query attention;
- ``positions``: "rotary", "ALiBi ...", "relative ...", "sinusoidal", "learned" or "none".

Example:
    >>> import llminspect as li
    >>> a = describe(li.load("toy-seq2seq").model)
    >>> [s.name for s in a.stacks], a.writer.name, a.writer.heads, a.writer.head_dim
    (['encoder', 'decoder'], 'decoder', 4, 32)
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass

import torch

from llminspect.models.structure import block_lists, detect_family


@dataclass(frozen=True)
class Stack:
    """One stack of repeated blocks."""

    name: str  # "" for an encoder's or decoder's only stack, "encoder" / "decoder" in an encoder-decoder
    path: str  # where the blocks live, e.g. "model.layers"
    blocks: tuple[torch.nn.Module, ...]
    heads: int  # query heads of each block's self-attention
    kv_heads: int  # key/value heads (fewer than ``heads``: grouped-query attention)
    head_dim: int  # numbers per head
    causal: bool  # True when a position sees only itself and earlier positions

    @property
    def layers(self) -> int:
        return len(self.blocks)

    def label(self, layer: int) -> str:
        """How a layer of this stack is named to people: "layer 3", "encoder layer 3"."""
        return f"{self.name} layer {layer}".strip()


@dataclass(frozen=True)
class Architecture:
    """A model's stacks, family and position scheme."""

    family: str  # "encoder", "decoder" or "encoder-decoder"
    stacks: tuple[Stack, ...]
    positions: str

    @property
    def writer(self) -> Stack:
        """The stack whose output becomes the model's output (an encoder-decoder's decoder)."""
        return self.stacks[-1]

    def stack(self, name: str | None = None) -> Stack:
        """The stack called ``name`` ("encoder", "decoder"), or the writer when None."""
        if name is None:
            return self.writer
        for stack in self.stacks:
            if stack.name == name:
                return stack
        from llminspect.errors import InputError

        have = [s.name for s in self.stacks if s.name] or ["none: one stack, leave stack=None"]
        raise InputError(f"stack={name!r}: this model's stacks are {', '.join(map(repr, have))}.")


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def describe(model) -> Architecture:
    """The ``Architecture`` of a transformers model (computed once per model object)."""
    if model in _CACHE:
        return _CACHE[model]
    config = model.config
    family = detect_family(config)
    found = block_lists(model)
    stacks = []
    for index, (path, blocks) in enumerate(found):
        name = ("encoder" if index == 0 else "decoder") if family == "encoder-decoder" and len(found) > 1 else ""
        heads, text = _heads(config, name), config.get_text_config()
        kv = getattr(text, "num_key_value_heads", None) if name != "encoder" else None
        width = getattr(text, "head_dim", None) or text.hidden_size // heads
        causal = family == "decoder" or name == "decoder"
        stacks.append(Stack(name, path, tuple(blocks), heads, kv or heads, width, causal))
    architecture = Architecture(family, tuple(stacks), position_kind(model, config))
    _CACHE[model] = architecture
    return architecture


def _heads(config, stack: str) -> int:
    if stack and hasattr(config, f"{stack}_attention_heads"):
        return getattr(config, f"{stack}_attention_heads")
    text = config.get_text_config()
    for name in ("num_attention_heads", "n_head", "num_heads"):
        if getattr(text, name, None):
            return getattr(text, name)
    raise ValueError(f"{type(config).__name__} names no attention head count")


def position_kind(model, config) -> str:
    """How a model knows where each token sits: rotary, ALiBi, relative buckets, sinusoidal or learned.

    Read from the model's structure (the functions next to its blocks, its position modules) and
    config, so GPT-J (rotary without an ``inv_freq`` buffer), BLOOM (ALiBi) and Marian (a fixed
    sinusoidal table) are named right.

    Example:
        >>> import llminspect as li
        >>> m = li.load("decoder")
        >>> position_kind(m.model, m.config)
        'rotary'
    """
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if config.model_type == "whisper":
        return "sinusoidal (encoder) + learned (decoder)"
    code = sys.modules[type(block_lists(model)[-1][1][0]).__module__]
    rotary = hasattr(code, "apply_rotary_pos_emb")
    if getattr(text, "alibi", False) or (hasattr(code, "build_alibi_tensor") and not rotary):
        return "ALiBi (a distance penalty on the scores)"
    if rotary:
        return "rotary"
    if getattr(text, "relative_attention_num_buckets", None):
        return "relative (T5 buckets)"
    if getattr(text, "relative_attention", False):
        learned = " + learned" if getattr(text, "position_biased_input", False) else ""
        return "relative (DeBERTa)" + learned
    names = [type(module).__name__ for module in model.modules()]
    if any("Sinusoidal" in name for name in names):
        return "sinusoidal"
    embeddings = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Embedding)]
    tables = [n for n in embeddings if "position" in n or "wpe" in n]
    return "learned" if tables else "none"
