"""Inspector: the loaded model's one front door.

It holds the transformers model and tokenizer (never hidden: ``m.model``, ``m.tokenizer``),
knows the model's family and input kind (text or audio), checks inputs before they reach torch,
and hands out data objects: ``Tokens`` from ``tokenize`` and ``Trace`` from ``trace``.

Example:
    >>> import llminspect as li
    >>> m = li.load("encoder")
    >>> m.family, len(m.tokenize("The quick brown fox"))
    ('encoder', 6)
"""

from __future__ import annotations

import copy
import math

import torch

from llminspect.analysis import audio as audio_io
from llminspect.analysis.tokens import Tokens, check_text, encode, from_ids, special_token_ids, tokenize
from llminspect.analysis.trace import Trace, capture_encoder_decoder, capture_single_stack
from llminspect.errors import EmptyInputError, FamilyError, InputError, InputTooLongError, WrongModalityError
from llminspect.models.loading import detect_family, quiet_transformers, use_eager_attention


class Inspector:
    """A model and its tokenizer, with input checks and the capture methods lessons use."""

    def __init__(self, model, tokenizer, *, name: str | None = None, feature_extractor=None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.config = model.config
        self.family = detect_family(model.config)
        self.name = name or getattr(model.config, "name_or_path", "") or type(model).__name__
        self.layer_timing = None  # seconds per block of the last trace or walk (a LayerTiming)
        use_eager_attention(model)

    def __repr__(self) -> str:
        return f"Inspector({self.name!r}, family={self.family!r}, device={str(self.device)!r}, dtype={self.dtype})"

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

    def running(self, progress: bool | None = None):
        """Context for a forward pass: per-layer timing, and a progress bar when ``progress`` (default: offloaded)."""
        from llminspect.analysis.progress import layer_progress

        show = self.offloaded if progress is None else progress
        return layer_progress(self.model, show=show, description=f"{self.name}: layers")

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

    # --- inputs -----------------------------------------------------------------------------

    def tokenize(self, text: str) -> Tokens:
        """Split ``text`` into tokens the way this model's tokenizer does (special tokens included)."""
        if not isinstance(text, str) and audio_io.looks_like_audio(text):
            raise WrongModalityError("tokenize takes text; audio is turned into features, not tokens.")
        return tokenize(self.tokenizer, text)

    def next_tokens(self, prompt: str, k: int = 10):
        """The ``k`` likeliest next tokens after ``prompt`` (decoders), as a ``NextTokens``."""
        from llminspect.analysis.sampling import next_tokens

        return next_tokens(self, prompt, k)

    def heal(self, prompt: str, k: int = 10):
        """Next tokens of ``prompt`` as written and after token healing, as a ``HealedPrompt``."""
        from llminspect.analysis.sampling import heal

        return heal(self, prompt, k)

    def importance(self, text, target: str | None = None, method: str = "integrated_gradients", **options):
        """Importance of each input token (or audio window) for a target, through captum: an ``Attribution``.

        See ``llminspect.analysis.importance.attribute`` for targets per family, methods and options.
        """
        from llminspect.analysis.importance import attribute

        return attribute(self, text, target, method, **options)

    def checked_tokens(self, text, role: str = "text") -> Tokens:
        """Tokenize ``text`` for a forward pass, refusing audio, empty text and text over the context."""
        limit = self.max_tokens
        if audio_io.looks_like_audio(text):
            raise WrongModalityError(
                f"{self.name} reads text, but it was given audio. Pass a string, or load a speech model "
                "such as li.load('encoder-decoder') (Whisper) for audio."
            )
        tokens = self.tokenize(text)
        if all(tokens.special):
            raise EmptyInputError(f"The {role} {text!r} has no tokens apart from special ones: give some real text.")
        if limit is not None and len(tokens) > limit:
            raise InputTooLongError(
                f"The {role} is {len(tokens)} tokens long but {self.name} reads at most {limit}. "
                f"Shorten it (e.g. the first {limit // 2} tokens) or use a model with a longer context."
            )
        return tokens

    def _audio_input(self, source) -> tuple[audio_io.Audio, dict, dict]:
        """The clip, the encoder's input features, and where the real audio ends among its positions."""
        audio_io.check_audio_path(source)
        if isinstance(source, str) and not audio_io.looks_like_audio(source):
            raise WrongModalityError(
                f"{self.name} is a speech model: it reads audio, not text. Pass a 16 kHz array or a WAV path, "
                "e.g. llminspect.models.registry.sample_audio('quick_brown_fox'); for text use li.load('toy-seq2seq')."
            )
        clip = audio_io.read_audio(source)
        extractor = self.feature_extractor
        max_seconds = extractor.n_samples / extractor.sampling_rate
        if clip.duration > max_seconds:
            raise InputTooLongError(
                f"The audio lasts {clip.duration:.1f} s but {self.name} hears at most {max_seconds:.0f} s "
                "at a time: cut it shorter."
            )
        features = extractor(clip.waveform, sampling_rate=clip.sample_rate, return_tensors="pt")
        positions = self.config.max_source_positions
        seconds = max_seconds / positions
        timing = {
            "audio_positions": min(math.ceil(clip.duration / seconds), positions),
            "seconds_per_position": seconds,
        }
        return clip, {"input_features": features.input_features.to(self.dtype)}, timing

    def _target(self, target: str | None, encoder_inputs: dict, max_new_tokens: int) -> Tokens:
        """The decoder's tokens: the given target text, or the model's own greedy output."""
        if target is None:
            inputs = {name: value.to(self.device) for name, value in encoder_inputs.items()}
            settings = copy.deepcopy(self.model.generation_config)  # greedy, whatever the model's defaults
            settings.update(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, max_length=None)
            with torch.no_grad(), quiet_transformers():
                generated = self.model.generate(**inputs, generation_config=settings)
            ids = generated[0].tolist()
            if self.modality == "text":
                tokens = from_ids(self.tokenizer, ids)
            else:  # Whisper's generate returns the text tokens only: put back its prefix and end token
                special = special_token_ids(self.tokenizer)
                body = [i for i in ids if i not in special]
                prefix = list(self.tokenizer.prefix_tokens)
                tokens = from_ids(self.tokenizer, prefix + body + [self.tokenizer.eos_token_id])
        elif self.modality == "audio":
            text = target if target[:1].isspace() else " " + target  # Whisper writes a leading space
            tokens = from_ids(self.tokenizer, encode(self.tokenizer, text, "target"))  # prefix + text + end
        else:
            start = self.config.decoder_start_token_id
            check_text(target, "target")
            tokens = from_ids(self.tokenizer, [start] + self.tokenizer(text_target=target).input_ids)
        limit = self.max_target_tokens
        if limit is not None and len(tokens) > limit:
            raise InputTooLongError(
                f"The target is {len(tokens)} tokens long; {self.name}'s decoder reads at most {limit}."
            )
        return tokens

    # --- capture ----------------------------------------------------------------------------

    def trace(
        self, source, target: str | None = None, *, max_new_tokens: int = 64, progress: bool | None = None
    ) -> Trace:
        """Run one forward pass and capture tokens, hidden states, attentions and logits.

        ``source`` is text, or audio (array or WAV path) for a speech model. For an
        encoder-decoder, ``target`` is the text the decoder reads; when omitted, the model
        writes it greedily (at most ``max_new_tokens``) and that output is traced. ``progress``
        shows a per-layer bar (default: on for offloaded models); ``layer_timing`` keeps the times.

        Example:
            >>> import llminspect as li
            >>> tr = li.load("toy-seq2seq").trace("happy bird eats mouse")
            >>> tr.tokens.strings
            ['<s>', 'birdo', 'gaja', 'manghas', 'muso', '</s>']
        """
        if self.family != "encoder-decoder":
            tokens = self._single_stack_tokens(source, target)
            with self.running(progress) as self.layer_timing:
                return capture_single_stack(self.model, self.family, tokens)
        inputs = self.encoder_decoder_inputs(source, target, max_new_tokens)
        with self.running(progress) as self.layer_timing:
            return capture_encoder_decoder(self.model, *inputs)

    def walk(self, source, target: str | None = None, *, how: str = "hooks", max_new_tokens: int = 64, progress=None):
        """Step through one forward pass, module by module: a ``Walk`` of ``Step``s in execution order.

        ``how="hooks"`` records the model's own modules as an ordinary forward pass runs them
        (any architecture, offloaded models too); ``how="by hand"`` re-does the pass in Python for
        the embedded families, residual adds written out. Both end on the forward pass's logits.

        Example:
            >>> import llminspect as li
            >>> walk = li.load("decoder").walk("The quick brown fox", how="by hand")
            >>> walk[0].name, walk[0].output_shape
            ('embed_tokens', (4, 576))
        """
        from llminspect.analysis.by_hand import walk_by_hand
        from llminspect.analysis.walk import Walk, batchless, walk_with_hooks

        if how not in ("hooks", "by hand"):
            raise InputError(f"how={how!r}: use 'hooks' or 'by hand'.")
        tokens, source_data, inputs = self.model_inputs(source, target, max_new_tokens)
        if how == "by hand":
            steps, logits = walk_by_hand(self.model, inputs)
        else:
            outputs = {}

            def run():
                with torch.no_grad():
                    outputs["out"] = self.model(**inputs, use_cache=False)
                return outputs["out"]

            with self.running(progress) as self.layer_timing:
                steps = walk_with_hooks(self.model, run)
            logits = batchless(getattr(outputs["out"], "logits", None))
        return Walk(self.family, how, tokens, steps, logits, source_data)

    def model_inputs(self, source, target: str | None = None, max_new_tokens: int = 64) -> tuple:
        """Checked inputs for one forward pass: (tokens the (decoder) stack reads, source or None, inputs on device).

        ``source`` is the text (or an encoder-decoder's source text or audio); ``target`` the decoder's
        text of an encoder-decoder (the model's own greedy output when None).
        """
        if self.family != "encoder-decoder":
            tokens = self._single_stack_tokens(source, target)
            return tokens, None, {"input_ids": torch.tensor([tokens.ids], device=self.device)}
        source_data, encoder_inputs, tokens, _ = self.encoder_decoder_inputs(source, target, max_new_tokens)
        inputs = {name: value.to(self.device) for name, value in encoder_inputs.items()}
        inputs["decoder_input_ids"] = torch.tensor([tokens.ids], device=self.device)
        return tokens, source_data, inputs

    def _single_stack_tokens(self, source, target: str | None) -> Tokens:
        """The checked tokens of an encoder's or decoder's input; ``target`` belongs to encoder-decoders only."""
        if target is not None:
            raise FamilyError(
                f"target= applies to encoder-decoder models; {self.name} is from the {self.family} family. "
                "For a decoder, put the continuation in the text itself."
            )
        return self.checked_tokens(source)

    def encoder_decoder_inputs(self, source, target: str | None = None, max_new_tokens: int = 64) -> tuple:
        """Checked inputs of an encoder-decoder, without the traced forward pass.

        Returns (source: Tokens or Audio, encoder inputs, decoder tokens, audio timing or None);
        the decoder tokens are ``target``'s, or the model's own greedy output when it is None.
        """
        if self.modality == "audio":
            source_data, encoder_inputs, timing = self._audio_input(source)
        else:
            source_data = self.checked_tokens(source, "source text")
            encoder_inputs, timing = {"input_ids": torch.tensor([source_data.ids])}, None
        if target is not None and not str(target).strip():
            raise EmptyInputError(
                "The target is empty: give some text, or leave target=None to let the model write one."
            )
        return source_data, encoder_inputs, self._target(target, encoder_inputs, max_new_tokens), timing
