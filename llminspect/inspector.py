"""The front door: ``load`` a model, then ask it questions with one-line verbs.

An ``Inspector`` is a ``LoadedModel`` (the transformers model and tokenizer, never hidden:
``m.model``, ``m.tokenizer``) with a verb for every analysis a lesson uses. Each verb checks the
input once (``m.inputs``) and hands plain data to one analysis in ``llminspect.analysis``; none
of them computes anything itself.

Example:
    >>> import llminspect as li
    >>> m = li.load("encoder")
    >>> m.family, len(m.tokenize("The quick brown fox"))
    ('encoder', 6)
"""

from __future__ import annotations

import os

from llminspect.analysis import (
    circuits,
    embeddings,
    experts,
    importance,
    interventions,
    journey,
    kv_cache,
    lens,
    logit_attribution,
    next_token,
    outline,
    precision,
    probes,
    rope,
    sampling,
    search,
    sites,
    steering,
    trace,
    walk,
)
from llminspect.analysis.arguments import list_of_texts, whole_number
from llminspect.analysis.audio import looks_like_audio
from llminspect.analysis.by_hand import opened
from llminspect.analysis.inputs import Inputs, prepare
from llminspect.analysis.progress import layer_progress
from llminspect.analysis.tokens import Tokens, tokenize
from llminspect.errors import InputError, WrongModalityError
from llminspect.models.loaded import LoadedModel
from llminspect.models.loading import load_model


def load(spec: str | os.PathLike = "decoder", device: str = "auto", dtype="auto", **options) -> Inspector:
    """Load a model and its tokenizer and return an ``Inspector``.

    ``spec`` is an embedded name ("encoder", "decoder", "encoder-decoder", "toy-seq2seq"), a
    model folder, a ``.gguf`` file or a hub id. ``options`` are ``models.loading.load_model``'s:
    ``offload="disk"`` streams blocks from the files, ``device_map=``, ``allow_pickle=``,
    ``trust_remote_code=``.

    Example:
        >>> import llminspect as li
        >>> li.load("toy-seq2seq", device="cpu").family
        'encoder-decoder'
    """
    loaded = load_model(spec, device, dtype, **options)
    return Inspector(loaded.model, loaded.tokenizer, name=loaded.name, feature_extractor=loaded.feature_extractor)


class Inspector(LoadedModel):
    """A loaded model with the verbs the lessons use; each verb is one analysis on checked inputs."""

    layer_timing = None  # seconds per block of the last trace or walk (a LayerTiming)

    def running(self, progress: bool | None = None):
        """Context for a forward pass: per-layer timing, and a progress bar when ``progress`` (default: offloaded)."""
        return layer_progress(self.model, show=self.offloaded if progress is None else progress,
                              description=f"{self.name}: layers")  # fmt: skip

    # --- inputs ---------------------------------------------------------------------------------

    def tokenize(self, text: str) -> Tokens:
        """Split ``text`` into tokens the way this model's tokenizer does (special tokens included)."""
        if not isinstance(text, str) and looks_like_audio(text):
            raise WrongModalityError("tokenize takes text; audio is turned into features, not tokens.")
        return tokenize(self.tokenizer, text)

    def inputs(self, source, target: str | None = None, *, max_new_tokens: int = 64, complete: bool = True) -> Inputs:
        """Checked inputs for one forward pass (see ``analysis.inputs.prepare``)."""
        max_new_tokens = whole_number(max_new_tokens, "max_new_tokens")
        return prepare(self, source, target, max_new_tokens=max_new_tokens, complete=complete)

    # --- the model's insides: named sites, one run -------------------------------------------------

    def sites(self) -> sites.Sites:
        """Every named place inside this model that ``run`` can keep or edit (``analysis.sites``).

        Example:
            >>> import llminspect as li
            >>> list(li.load("decoder").sites())[:3]
            ['embeddings', 'layer.0.input', 'layer.0.attention.q']
        """
        return sites.sites_of(self)

    def run(self, source, target: str | None = None, *, keep=(), edit=None, **forward) -> sites.Cache:
        """One forward pass that keeps the sites in ``keep`` and changes those in ``edit`` (name -> function).

        Example — a learner's own experiment: switch head 4 of layer 23 off and watch " Paris":
            >>> import llminspect as li
            >>> m = li.load("decoder")
            >>> def off(heads):
            ...     heads[:, :, 4] = 0
            ...     return heads
            >>> cache = m.run("The capital of France is", edit={"layer.23.attention.heads": off})
            >>> p = cache.logits[0, -1].softmax(-1)[m.tokenize(" Paris").ids[0]]
        """
        return sites.run(self, self.inputs(source, target), keep, edit, **forward)

    # --- one forward pass, captured ---------------------------------------------------------------

    def trace(self, source, target: str | None = None, *, max_new_tokens: int = 64, progress: bool | None = None):
        """Run one forward pass and capture tokens, hidden states, attentions and logits: a ``Trace``.

        ``source`` is text, or audio (array or WAV path) for a speech model. For an
        encoder-decoder, ``target`` is the text the decoder reads; when omitted, the model
        writes it greedily (at most ``max_new_tokens``) and that output is traced. ``progress``
        shows a per-layer bar (default: on for offloaded models); ``layer_timing`` keeps the times.

        Example:
            >>> import llminspect as li
            >>> li.load("toy-seq2seq").trace("happy bird eats mouse").tokens.strings
            ['<s>', 'birdo', 'gaja', 'manghas', 'muso', '</s>']
        """
        inputs = self.inputs(source, target, max_new_tokens=max_new_tokens)
        with self.running(progress) as self.layer_timing:
            return trace.capture(self, inputs)

    def walk(self, source, target: str | None = None, *, how: str = "hooks", max_new_tokens: int = 64, progress=None):
        """Step through one forward pass, module by module: a ``Walk`` of ``Step``s in execution order.

        ``how="hooks"`` records the model's own modules as an ordinary forward pass runs them
        (any architecture, offloaded models too); ``how="by hand"`` re-does the pass in Python,
        residual adds and attention arithmetic written out, and proves it ends where the model ends.

        Example:
            >>> import llminspect as li
            >>> steps = li.load("decoder").walk("The quick brown fox", how="by hand")
            >>> steps[0].name, steps[0].output_shape
            ('embed_tokens', (4, 576))
        """
        inputs = self.inputs(source, target, max_new_tokens=max_new_tokens)
        with self.running(progress) as self.layer_timing:
            return walk.walk(self, inputs, how)

    def journey(self, prompt: str, layer: int | None = None, head: int = 0) -> journey.Journey:
        """One prompt through the whole loop, every stage with its shape and numbers (``analysis.journey``)."""
        return journey.journey(self, self.inputs(prompt), layer, head)

    def kv_cache(self, prompt: str, steps: int = 20) -> kv_cache.CacheRun:
        """``steps`` greedy tokens with and without the key/value cache, timed (``analysis.kv_cache``)."""
        return kv_cache.kv_cache_run(self, self.inputs(prompt), steps)

    def translation_steps(self, source, target: str | None = None) -> journey.Translation:
        """An encoder-decoder's loop: the encoder once, then each decoder step's cross-attention peak."""
        return journey.translation_steps(self, self.inputs(source, target))

    def open_block(self, text: str, layer: int = 0, head: int = 0) -> opened.OpenedBlock:
        """One Llama-style block as arithmetic on its weights, following query head ``head`` (``by_hand.opened``)."""
        return opened.open_block(self, self.inputs(text), layer, head)

    def outline(self, walk=None) -> outline.ModuleNode:
        """The model's module tree (``print(model)`` as data), with each module's output shape after ``walk``."""
        return outline.module_tree(self.model, walk)

    def logit_lens(self, source, target: str | None = None, *, answer: str | None = None) -> lens.LogitLens:
        """The logit lens: every layer read through the model's own head (``analysis.lens``)."""
        return lens.logit_lens(self, self.inputs(source, target), answer)

    def rotary(self, text: str, layer: int = 0, head: int = 0) -> rope.Rotary:
        """One head's queries and keys before and after RoPE turned them (``analysis.rope``)."""
        return rope.rotary(self, self.inputs(text), layer, head)

    def routing(self, text: str) -> experts.Routing:
        """A mixture-of-experts model's router decisions per layer and token (``analysis.experts``)."""
        return experts.routing(self, self.inputs(text))

    # --- what the model predicts ------------------------------------------------------------------

    def next_tokens(self, prompt: str, k: int = 10) -> next_token.NextTokens:
        """The ``k`` likeliest next tokens after ``prompt`` (decoders)."""
        k = whole_number(k, "k")
        return next_token.next_tokens(self, self.inputs(prompt), k)

    def answer_probabilities(self, prompt: str, answers: list[str]) -> dict[str, float]:
        """p(each one-token answer) next after ``prompt`` (decoders): does the model do the task at all?"""
        return next_token.answer_probabilities(self, self.inputs(prompt), answers)

    def healing(self, prompt: str, k: int = 10) -> next_token.Healing:
        """Next tokens of ``prompt`` as written and after token healing."""
        k = whole_number(k, "k")
        return next_token.healing(self, self.inputs(prompt), k)

    def branches(self, prompt: str, width: int = 3, depth: int = 3) -> list[next_token.Branch]:
        """Every path through the ``width`` likeliest tokens for ``depth`` steps, with its probability."""
        width, depth = whole_number(width, "width"), whole_number(depth, "depth")
        return next_token.branches(self, self.inputs(prompt), width, depth)

    def greedy_and_beam(self, prompt: str, steps: int = 8, beams: int = 4):
        """What greedy decoding and beam search write after ``prompt`` (``analysis.search``)."""
        return search.greedy_and_beam(self, self.inputs(prompt), steps, beams)

    def surprisal(self, text: str) -> next_token.Surprisal:
        """How surprised the model is by each token of ``text``, and its perplexity."""
        return next_token.surprisal(self, self.inputs(text))

    def sampling(self, prompt: str = "", source=None) -> sampling.Sampling:
        """The next-token distribution after ``prompt`` under sampling knobs (for an encoder-decoder, the
        decoder's side: ``source`` is what the encoder reads, ``prompt`` the start of the decoder's text)."""
        if self.family == "encoder-decoder":
            if source is None:
                raise InputError("An encoder-decoder needs source= (the text or audio its encoder reads).")
            return sampling.Sampling(self, self.inputs(source, prompt, complete=False))
        return sampling.Sampling(self, self.inputs(prompt))

    def importance(self, text, target: str | None = None, method: str = "integrated_gradients", **options):
        """Importance of each input token (or audio window), through captum: an ``Attribution``.

        ``target`` is what the model writes: a decoder's continuation (the next token by default)
        or an encoder-decoder's decoder text (its own output by default). An encoder explains its
        similarity to ``other=`` (a second sentence). See ``analysis.importance`` for methods and options.
        """
        if self.family == "encoder-decoder":
            return importance.attribute(self, self.inputs(text, target), method, **options)
        return importance.attribute(self, self.inputs(text), method, target=target, **options)

    # --- interventions: test a hypothesis by changing the model ------------------------------------

    def heads_off(self, heads, how: str = "zero", reference: str | None = None):
        """A ``with`` block in which the (layer, head) pairs ``heads`` are switched off: zero, or (``how="mean"``)
        their mean output over the text ``reference`` (``analysis.interventions``)."""
        reference = None if reference is None else self.inputs(reference)
        return interventions.heads_off(self, heads, interventions.means_for(self, reference, how))

    def ablation(self, prompt: str, answer: str, heads, how: str = "zero") -> interventions.Ablation:
        """p(``answer``) after ``prompt`` and the top next tokens with all heads, then with ``heads`` off."""
        return interventions.ablation(self, self.inputs(prompt), answer, heads, how)

    def head_effects(self, prompt: str, answer: str, how: str = "zero") -> interventions.HeadEffects:
        """Every head switched off alone: the change of log p(``answer``) after ``prompt``."""
        return interventions.head_effects(self, self.inputs(prompt), answer, how)

    def patching(self, clean: str, corrupt: str, answer: str) -> interventions.Patching:
        """Activation patching: the clean prompt's stream put back into the corrupted one, layer by position."""
        return interventions.patching(self, self.inputs(clean), self.inputs(corrupt), answer)

    def precisions(self, texts: list[str]) -> list[precision.PrecisionEffect]:
        """The model's next-token guesses on ``texts`` with its weights at each precision (``analysis.precision``)."""
        texts = list_of_texts(texts, "texts")
        return precision.precision_effects(self, [self.inputs(text) for text in texts])

    def activation_outliers(self, text: str, layer: int, dims: int = 2) -> precision.ActivationOutliers:
        """The residual stream after block ``layer`` through 8-bit round trips: one scale for all tokens, one per
        token, and one per token with the ``dims`` largest feature dimensions kept aside (``analysis.precision``)."""
        return precision.activation_outliers(self, self.inputs(text), layer, dims)

    # --- circuits: find a mechanism, then switch it off -------------------------------------------

    def induction(self, length: int = 40, seed: int = 0) -> circuits.Induction:
        """``length`` random tokens repeated twice: the loss per token and every head's induction and previous-token
        scores (``analysis.circuits``)."""
        return circuits.induction(self, length, seed)

    def induction_ablation(self, found: circuits.Induction, n: int = 5, controls: int = 3, seed: int = 0):
        """The second copy's loss with the top ``n`` induction heads, the top ``n`` previous-token heads and
        ``controls`` sets of ``n`` random heads switched off, zeroed and at their means (``analysis.circuits``)."""
        return circuits.induction_ablation(self, found, n, controls, seed)

    def logit_attribution(self, prompt: str, answer: str, other: str) -> logit_attribution.LogitAttribution:
        """Each embedding, attention, MLP and head's direct share of logit(``answer``) − logit(``other``) after
        ``prompt``, the final norm's scale held at its value (``analysis.logit_attribution``)."""
        self.require_decoder("Direct logit attribution")  # before the inputs: an encoder-decoder would write a target
        return logit_attribution.logit_attribution(self, self.inputs(prompt), answer, other)

    # --- what the stream holds: probes and steering -------------------------------------------------

    def probe(self, data: probes.ProbeData, position: int = -1, seed: int = 0, **options) -> probes.Probe:
        """A logistic-regression probe per layer for ``data``'s labels at ``position``, beside the same probe on a
        control task (``analysis.probes``; options: test_share, strength, hold_out_words, features)."""
        return probes.probe(self, data, position, seed, **options)

    def steering(self, prompts: list[str], positive: str, negative: str, words, layers, coefficients,
                 controls: int = 2, seed: int = 0) -> steering.Steering:  # fmt: skip
        """ActAdd: the change of a word-list metric over ``prompts`` when ``positive`` − ``negative`` (their streams)
        is added at each layer and coefficient, beside random vectors of the same norm (``analysis.steering``)."""
        return steering.steering(self, prompts, positive, negative, words, layers, coefficients, controls, seed)

    def steered_text(self, prompt: str, positive: str, negative: str, layer: int, coefficient: float,
                     tokens: int = 20, seed: int = 0) -> steering.SteeredText:  # fmt: skip
        """What the model writes after ``prompt``: as it is, steered, and with a random vector of the same norm."""
        return steering.steered_text(self, prompt, positive, negative, layer, coefficient, tokens, seed)

    # --- vectors ----------------------------------------------------------------------------------

    def word_in_contexts(self, word: str, contexts: list[str]) -> embeddings.WordVectors:
        """The static vector of ``word`` and its contextual vector at every layer in each context."""
        return embeddings.word_in_contexts(self, word, contexts)

    def sentence_vectors(self, sentences: list[str], pooling: str = "mean", layer: int = -1):
        """One vector per sentence from a layer's hidden states: [sentences, hidden]."""
        return embeddings.sentence_vectors(self, sentences, pooling, layer)

    def nearest_tokens(self, word: str, k: int = 10, centred: bool = False) -> embeddings.Neighbours:
        """The vocabulary entries whose static vectors are closest to ``word``'s (``centred``: minus the mean row)."""
        return embeddings.nearest_tokens(self, word, k, centred)

    def analogy(self, positive: list[str], negative: list[str], k: int = 10) -> embeddings.Neighbours:
        """Nearest tokens to sum(positive) - sum(negative), the words themselves left out."""
        return embeddings.analogy(self, positive, negative, k)
