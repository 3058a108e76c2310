"""The next-token distribution of a decoder, token healing, and the sampling knobs.

``next_tokens`` is the plain softmax of the last position's logits. ``heal`` shows why a prompt
that ends inside a would-be token ("http:" instead of "http://") misleads a model: byte-level
BPE trained on "://" as one token rarely saw ":" followed by "//". Token healing backs up over
the last token and lets the model choose any token that *starts with* the removed text.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> healed = heal(m, "The url is http:")
    >>> healed.removed, healed.after.tokens[0]
    (':', '://')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from llminspect.analysis.tokens import bytes_of, encode, special_token_ids
from llminspect.errors import FamilyError, InputError


@dataclass(frozen=True)
class NextTokens:
    """The top of a next-token distribution."""

    prompt: str
    ids: list[int]
    tokens: list[str]  # decoded text of each candidate
    probabilities: list[float]
    entropy: float  # of the whole distribution, in bits

    def rows(self) -> list[dict]:
        return [
            {"token": t, "id": i, "probability": p}
            for t, i, p in zip(self.tokens, self.ids, self.probabilities, strict=True)
        ]


@dataclass(frozen=True)
class HealedPrompt:
    """A prompt's next tokens as written, and after backing up over its last token."""

    prompt: str
    removed: str  # the text of the last token, taken back
    before: NextTokens  # the model's guesses after the full prompt
    after: NextTokens  # guesses after the shortened prompt, among tokens starting with ``removed``
    mass: float  # total probability the shortened prompt gave to those tokens


def _require_decoder(inspector, what: str) -> None:
    if inspector.family != "decoder":
        raise FamilyError(
            f"{what} needs a decoder (a model that predicts the next token); "
            f"{inspector.name} is from the {inspector.family} family."
        )
    inspector.require_lm_head(what)


def _last_probabilities(inspector, ids: list[int]) -> torch.Tensor:
    """Next-token probabilities after ``ids``, in float64 so entropies over ~50k tokens stay exact."""
    with torch.no_grad():
        logits = inspector.model(input_ids=torch.tensor([ids], device=inspector.device)).logits[0, -1]
    return logits.double().softmax(-1).cpu()


def _top(inspector, prompt: str, probs: torch.Tensor, k: int) -> NextTokens:
    values, indices = probs.topk(min(k, int((probs > 0).sum())))
    return NextTokens(
        prompt=prompt,
        ids=indices.tolist(),
        tokens=[inspector.tokenizer.decode([i]) for i in indices.tolist()],
        probabilities=values.tolist(),
        entropy=float(torch.special.entr(probs).sum() / math.log(2)),
    )


def next_tokens(inspector, prompt: str, k: int = 10) -> NextTokens:
    """The ``k`` likeliest next tokens after ``prompt`` and their probabilities."""
    _require_decoder(inspector, "next_tokens")
    tokens = inspector.checked_tokens(prompt)
    probs = _last_probabilities(inspector, tokens.ids)
    return _top(inspector, prompt, probs, k)


@functools.lru_cache(maxsize=4)
def _vocabulary_bytes(tokenizer) -> list[bytes]:
    strings = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = special_token_ids(tokenizer)
    return bytes_of(tokenizer, [s or "" for s in strings], [i in special for i in range(len(strings))])


def heal(inspector, prompt: str, k: int = 10) -> HealedPrompt:
    """Compare the next tokens of ``prompt`` with those after token healing."""
    _require_decoder(inspector, "Token healing")
    tokens = inspector.checked_tokens(prompt)
    real = [i for i, special in enumerate(tokens.special) if not special]
    if len(real) < 2:
        raise InputError("Token healing backs up over the last token, so the prompt needs at least two tokens.")
    last = real[-1]
    removed = tokens.token_bytes[last]
    vocabulary = _vocabulary_bytes(inspector.tokenizer)
    allowed = torch.tensor([raw.startswith(removed) for raw in vocabulary])
    probs = _last_probabilities(inspector, tokens.ids[:last])[: len(vocabulary)]
    kept = torch.where(allowed, probs, torch.zeros_like(probs))
    mass = float(kept.sum())
    healed = kept / mass
    return HealedPrompt(
        prompt=prompt,
        removed=removed.decode("utf-8", errors="replace"),
        before=next_tokens(inspector, prompt, k),
        after=_top(inspector, prompt[: tokens.offsets[last][0]], healed, k),
        mass=mass,
    )


# --- sampling knobs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Knobs:
    """Sampling settings, named as in ``transformers.GenerationConfig`` (0 / 1.0 switch a knob off).

    ``temperature=0`` means greedy decoding (only the likeliest token is kept).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        """Refuse values transformers rejects or that overflow float32, naming the knob and its range."""
        checks = {
            "temperature": (lambda t: t == 0 or 1e-3 <= t <= 100, "0 (greedy) or from 0.001 to 100, e.g. 0.7"),
            "top_k": (lambda k: k >= 0 and float(k).is_integer(), "a whole number, 0 (off) or more, e.g. 40"),
            "top_p": (lambda p: 0 < p <= 1, "more than 0 and at most 1 (1 = off), e.g. 0.9"),
            "min_p": (lambda p: 0 <= p <= 1, "from 0 (off) to 1, e.g. 0.05"),
            "repetition_penalty": (lambda r: 0.01 <= r <= 100, "from 0.01 to 100 (1 = off), e.g. 1.3"),
        }
        for name, (fits, words) in checks.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not (number and fits(value)):
                raise InputError(f"{name}={value!r} is out of range: {name} must be {words}.")


@dataclass(frozen=True)
class Stage:
    """The next-token distribution after one knob."""

    name: str
    probabilities: torch.Tensor  # [vocab], float64
    entropy: float  # bits
    kept: int  # tokens with probability > 0


def processors(knobs: Knobs) -> list[tuple[str, object]]:
    """transformers' own logits processors for ``knobs``, in the order ``generate(do_sample=True)`` applies them.

    Example:
        >>> [name for name, _ in processors(Knobs(temperature=0.7, top_p=0.9))]
        ['temperature 0.7', 'top-p 0.9']
    """
    from transformers import (
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    steps: list[tuple[str, object]] = []
    if knobs.repetition_penalty != 1.0:
        steps.append(
            (
                f"repetition penalty {knobs.repetition_penalty:g}",
                RepetitionPenaltyLogitsProcessor(knobs.repetition_penalty),
            )
        )
    if knobs.temperature == 0:
        steps.append(("temperature 0 (greedy)", TopKLogitsWarper(top_k=1)))
    elif knobs.temperature != 1.0:
        steps.append((f"temperature {knobs.temperature:g}", TemperatureLogitsWarper(knobs.temperature)))
    if knobs.top_k:
        steps.append((f"top-k {knobs.top_k}", TopKLogitsWarper(top_k=int(knobs.top_k))))
    if knobs.top_p < 1.0:
        steps.append((f"top-p {knobs.top_p:g}", TopPLogitsWarper(top_p=knobs.top_p)))
    if knobs.min_p > 0:
        steps.append((f"min-p {knobs.min_p:g}", MinPLogitsWarper(min_p=knobs.min_p)))
    return steps


def apply_knobs(logits: torch.Tensor, ids: list[int], knobs: Knobs) -> list[Stage]:
    """The distribution of ``logits`` [vocab] before any knob, then after each knob in generate's order.

    ``ids`` are the tokens read so far (the repetition penalty looks at them).

    Example:
        >>> stages = apply_knobs(torch.tensor([2.0, 1.0, 0.0]), [0], Knobs(top_k=2))
        >>> [s.kept for s in stages]
        [3, 2]
    """
    scores = logits.float()[None].clone()
    context = torch.tensor([ids])
    result = [_stage("model", scores[0])]
    for name, processor in processors(knobs):
        scores = processor(context, scores)
        result.append(_stage(name, scores[0]))
    return result


def _stage(name: str, scores: torch.Tensor) -> Stage:
    probs = scores.double().softmax(-1)
    return Stage(name, probs, float(torch.special.entr(probs).sum() / math.log(2)), int((probs > 0).sum()))


class NextTokenLab:
    """One prompt's next-token logits, computed once, and the knobs applied on top of them.

    Works for decoders and for the decoder side of encoder-decoders (``source`` = what the encoder
    reads; ``prompt`` = the start of the decoder's text).

    Example:
        >>> import llminspect as li
        >>> lab = NextTokenLab(li.load("decoder"), "The capital of France is")
        >>> [round(s.entropy, 2) > 0 for s in lab.stages(Knobs(top_k=1))][-1], lab.stages(Knobs(top_k=1))[-1].kept
        (False, 1)
    """

    def __init__(self, inspector, prompt: str = "", source=None) -> None:
        self.inspector = inspector
        self.source = source
        if inspector.family == "encoder":
            raise FamilyError(
                f"{inspector.name} is an encoder: it does not predict next tokens. Use a decoder or an encoder-decoder."
            )
        inspector.require_lm_head("The sampling lab")
        if inspector.family == "encoder-decoder":
            if source is None:
                raise InputError("An encoder-decoder needs source= (the text or audio its encoder reads).")
            self._encoder_inputs = self._encode(source)
            tokenizer = inspector.tokenizer
            if inspector.modality == "audio":  # Whisper: <|startoftranscript|><|notimestamps|>, then text
                start, text = list(tokenizer.prefix_tokens), (" " + prompt.strip() if prompt.strip() else "")
            else:
                start, text = [inspector.config.decoder_start_token_id], prompt
            self.ids = start + (encode(tokenizer, text, "prompt", add_special_tokens=False) if text else [])
        else:
            self.ids = inspector.checked_tokens(prompt).ids
        self.chosen: list[tuple[int, str]] = []  # (token id, how it was chosen)
        self._refresh()

    def _encode(self, source) -> dict:
        if self.inspector.modality == "audio":
            return self.inspector._audio_input(source)[1]
        return {"input_ids": torch.tensor([self.inspector.checked_tokens(source, "source text").ids])}

    def _refresh(self) -> None:
        model, device = self.inspector.model, self.inspector.device
        ids = torch.tensor([self.ids], device=device)
        with torch.no_grad():
            if self.inspector.family == "encoder-decoder":
                inputs = {k: v.to(device) for k, v in self._encoder_inputs.items()}
                logits = model(**inputs, decoder_input_ids=ids).logits
            else:
                logits = model(input_ids=ids).logits
        self.logits = logits[0, -1].float().cpu()

    @property
    def text(self) -> str:
        """The decoder's text so far."""
        return self.inspector.tokenizer.decode(self.ids, skip_special_tokens=True)

    def stages(self, knobs: Knobs) -> list[Stage]:
        """The distribution before any knob, then after each knob in generate's order."""
        return apply_knobs(self.logits, self.ids, knobs)

    def sample(self, knobs: Knobs, seed: int | None = None) -> int:
        """Draw a token from the final distribution (reproducible with ``seed``)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return int(torch.multinomial(self.stages(knobs)[-1].probabilities, 1, generator=generator))

    def append(self, token_id: int, how: str = "picked") -> None:
        """Add a token to the text and compute the next distribution (one forward pass)."""
        self.ids = self.ids + [int(token_id)]
        self.chosen.append((int(token_id), how))
        self._refresh()

    def undo(self) -> None:
        """Take the last chosen token back."""
        if self.chosen:
            self.ids = self.ids[:-1]
            self.chosen.pop()
            self._refresh()


@dataclass(frozen=True)
class Branch:
    """One path of the continuation tree."""

    tokens: list[str]
    probability: float  # of the whole path: the product of its steps' probabilities


def branches(inspector, prompt: str, width: int = 3, depth: int = 3) -> list[Branch]:
    """Every path that picks one of the ``width`` likeliest tokens at each of ``depth`` steps."""
    _require_decoder(inspector, "branches")
    if width * depth > 40 or width < 1 or depth < 1:
        raise InputError("Keep the tree small: width and depth at least 1, width x depth at most 40.")
    paths = [([], [], 1.0)]
    start = inspector.checked_tokens(prompt).ids
    for _ in range(depth):
        grown = []
        for ids, names, p in paths:
            probs = _last_probabilities(inspector, start + ids)
            values, indices = probs.topk(width)
            for value, index in zip(values.tolist(), indices.tolist(), strict=True):
                grown.append((ids + [index], names + [inspector.tokenizer.decode([index])], p * value))
        paths = grown
    return [Branch(names, p) for _, names, p in sorted(paths, key=lambda path: -path[2])]


@dataclass(frozen=True)
class Surprisal:
    """How surprised the model is by each token of a text."""

    tokens: list[str]  # labels of the scored tokens (all but the first)
    bits: list[float]  # -log2 P(x_t | x_<t)
    perplexity: float  # exp(mean negative log-likelihood in nats) = 2 ** mean(bits)


def surprisal(inspector, text: str) -> Surprisal:
    """Per-token surprisal and perplexity, from P(x) = prod_t P(x_t | x_<t).

    The first token has nothing before it, so it is not scored.
    """
    _require_decoder(inspector, "surprisal")
    tokens = inspector.checked_tokens(text)
    if len(tokens) < 2:
        raise InputError("Perplexity needs at least two tokens: the first one has nothing before it.")
    with torch.no_grad():
        logits = inspector.model(input_ids=torch.tensor([tokens.ids], device=inspector.device)).logits[0, :-1]
    log_probs = logits.double().log_softmax(-1).cpu()
    nll = -log_probs[torch.arange(len(tokens) - 1), torch.tensor(tokens.ids[1:])]
    return Surprisal(tokens.labels[1:], (nll / math.log(2)).tolist(), float(nll.mean().exp()))
