"""A loaded model as plain data: what every analysis reads, and nothing it could call back into.

``LoadedModel`` holds the transformers model, its tokenizer (and a speech model's feature
extractor) and answers questions about them: family, device, dtype, input kind, context limits,
whether there is a language-model head. Analyses in ``llminspect.analysis`` take one of these
plus checked ``Inputs``; the ``Inspector`` (the front door) is a ``LoadedModel`` with verbs.

Example:
    >>> import llminspect as li
    >>> m = li.load("toy-seq2seq")
    >>> isinstance(m, LoadedModel), m.family, m.modality, m.has_lm_head
    (True, 'encoder-decoder', 'text', True)
"""

from __future__ import annotations

import torch

from llminspect.errors import FamilyError
from llminspect.models.structure import detect_family


class LoadedModel:
    """A transformers model with its tokenizer, checked and described (never hidden: ``.model``, ``.tokenizer``)."""

    def __init__(self, model, tokenizer, *, name: str | None = None, feature_extractor=None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.config = model.config
        self.family = detect_family(model.config)
        self.name = name or getattr(model.config, "name_or_path", "") or type(model).__name__
        use_eager_attention(model)

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}({self.name!r}, family={self.family!r}, device={str(self.device)!r}, dtype={self.dtype})"

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def offloaded(self) -> bool:
        """True when blocks live off the execution device (CPU memory or disk) and stream in as they run."""
        placement = getattr(self.model, "hf_device_map", None) or {}
        return "disk" in placement.values() or ("cpu" in placement.values() and self.device.type != "cpu")

    @property
    def modality(self) -> str:
        """What the model reads first: "text", or "audio" for speech models such as Whisper."""
        return "audio" if self.model.main_input_name == "input_features" else "text"

    @property
    def alignment_heads(self) -> list[tuple[int, int]] | None:
        """(layer, head) pairs whose cross-attention tracks time in the audio (Whisper ships them)."""
        heads = getattr(self.model.generation_config, "alignment_heads", None)
        return [tuple(pair) for pair in heads] if heads else None

    @property
    def max_tokens(self) -> int | None:
        """The most tokens a text input may have (None: the model sets no limit, e.g. T5)."""
        return getattr(self.config, "max_position_embeddings", None)

    @property
    def max_target_tokens(self) -> int | None:
        """The most tokens the decoder of an encoder-decoder may read."""
        return getattr(self.config, "max_target_positions", None) or self.max_tokens

    @property
    def has_lm_head(self) -> bool:
        """Whether the model turns hidden states into token scores (a language-model or masked-LM head)."""
        return self.model.get_output_embeddings() is not None

    def require_lm_head(self, what: str) -> None:
        """Refuse ``what`` (something that reads token scores) on a model without a head, saying why."""
        if self.has_lm_head:
            return
        if self.family == "decoder":
            saved = ", ".join(getattr(self.config, "architectures", None) or []) or type(self.model).__name__
            raise FamilyError(
                f"{what} needs next-token scores, but {self.name} was saved without its language-model head "
                f"({saved}): it gives hidden states only. Load the checkpoint that includes the head "
                "(a ...ForCausalLM), or use trace/walk/embeddings, which need no head."
            )
        raise FamilyError(
            f"{what} needs a model that scores tokens, and {self.name} is an {self.family} without a language-model "
            "head. Use a decoder (li.load('decoder')), an encoder-decoder, or an encoder saved with its masked-LM "
            "head (e.g. BertForMaskedLM)."
        )

    def require_decoder(self, what: str) -> None:
        """Refuse ``what`` (something that reads a decoder's next-token scores) on any other model, saying why."""
        self.require_family(what, "decoder")
        self.require_lm_head(what)

    def require_family(self, what: str, *families: str) -> None:
        """Refuse ``what`` unless the model is of one of ``families``, naming the ones it works for."""
        if self.family not in families:
            raise FamilyError(
                f"{what} works for {' and '.join(f'{f} models' for f in families)}; {self.name} is from the "
                f"{self.family} family."
            )

    def describe(self) -> dict:
        """A short model card: family, sizes, where it runs.

        Example:
            >>> import llminspect as li
            >>> li.load("encoder").describe()["layers"]
            6
        """
        config = self.config
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = getattr(text_config, "num_attention_heads", None) or getattr(config, "encoder_attention_heads", None)
        return {
            "name": self.name,
            "family": self.family,
            "architecture": type(self.model).__name__,
            "reads": self.modality,
            "layers": getattr(text_config, "num_hidden_layers", None),
            "heads": heads,
            "key/value heads": getattr(text_config, "num_key_value_heads", heads),
            "hidden size": getattr(text_config, "hidden_size", None),
            "vocabulary": getattr(text_config, "vocab_size", None),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "max tokens": self.max_tokens if self.modality == "text" else self.max_target_tokens,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
        }


def use_eager_attention(model) -> None:
    """Switch a model to eager attention, the implementation that returns attention weights."""
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")
