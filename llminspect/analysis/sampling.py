"""Sampling knobs: the next-token distribution after each of transformers' own logits processors.

``Knobs`` names the settings as ``transformers.GenerationConfig`` does; ``processors`` builds the
very processors ``generate(do_sample=True)`` applies, in its order; ``apply_knobs`` runs them on
one position's logits and reports each stage. ``Sampling`` keeps one text's logits so knobs
redraw without running the model, and appends tokens as a learner samples, picks or undoes.

Example:
    >>> [name for name, _ in processors(Knobs(temperature=0.7, top_p=0.9))]
    ['temperature 0.7', 'top-p 0.9']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import run
from llminspect.analysis.tokens import token_labels
from llminspect.errors import InputError


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

    @classmethod
    def from_generate(cls, model, **settings) -> Knobs:
        """The knobs ``model.generate(do_sample=True, **settings)`` really uses: what you set, then the model's
        ``generation_config``, then transformers' global defaults — which switch on ``top_k=50`` unless told.

        Example:
            >>> import llminspect as li
            >>> Knobs.from_generate(li.load("decoder").model, temperature=0.7, top_p=0.9).top_k
            50
        """
        unknown = set(settings) - {"temperature", "top_k", "top_p", "min_p", "repetition_penalty"}
        if unknown:
            names = "temperature, top_k, top_p, min_p, repetition_penalty"
            raise InputError(f"Unknown knob(s) {sorted(unknown)}: use {names}.")
        config, _ = model._prepare_generation_config(None, do_sample=True, **settings)  # generate's own layering
        return cls(
            temperature=config.temperature if config.temperature is not None else 1.0,
            top_k=config.top_k or 0,
            top_p=config.top_p if config.top_p is not None else 1.0,
            min_p=config.min_p or 0.0,
            repetition_penalty=config.repetition_penalty if config.repetition_penalty is not None else 1.0,
        )


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


class Sampling:
    """One text's next-token logits, computed once, and the knobs applied on top of them.

    Works for decoders and for the decoder side of encoder-decoders: ``inputs`` come from
    ``prepare(m, text)``, or ``prepare(m, source, prompt, complete=False)`` for an encoder-decoder.

    Example:
        >>> import llminspect as li
        >>> from llminspect.analysis.inputs import prepare
        >>> m = li.load("decoder")
        >>> sampling = Sampling(m, prepare(m, "The capital of France is"))
        >>> sampling.stages(Knobs(top_k=1))[-1].kept
        1
    """

    def __init__(self, m, inputs: Inputs) -> None:
        m.require_family("Sampling", "decoder", "encoder-decoder")
        m.require_lm_head("Sampling")
        self.m, self.inputs = m, inputs
        self.chosen: list[tuple[int, str]] = []  # (token id, how it was chosen)
        self._refresh()

    @property
    def ids(self) -> list[int]:
        """The (decoder) tokens read so far."""
        return self.inputs.tokens.ids

    def _refresh(self) -> None:
        self.logits = run(self.m, self.inputs, last_only=True).logits[0, -1].float().cpu()

    @property
    def text(self) -> str:
        """The (decoder's) text so far."""
        return self.m.tokenizer.decode(self.ids, skip_special_tokens=True)

    def written(self) -> tuple[str, list[tuple[str, str]]]:
        """The text before any chosen token, then each chosen token's text and how it was chosen."""
        tokenizer = self.m.tokenizer
        start = tokenizer.decode(self.ids[: len(self.ids) - len(self.chosen)], skip_special_tokens=True)
        return start, [(tokenizer.decode([token_id]), how) for token_id, how in self.chosen]

    def labels(self, ids: list[int]) -> list[str]:
        """How tokens ``ids`` are shown (spaces visible), for a chart of the distribution."""
        return token_labels(self.m.tokenizer, ids)

    def stages(self, knobs: Knobs) -> list[Stage]:
        """The distribution before any knob, then after each knob in generate's order."""
        return apply_knobs(self.logits, self.ids, knobs)

    def sample(self, knobs: Knobs, seed: int | None = None) -> int:
        """Draw a token from the final distribution (reproducible with ``seed``)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return int(torch.multinomial(self.stages(knobs)[-1].probabilities, 1, generator=generator))

    def append(self, token_id: int, how: str = "picked") -> None:
        """Add a token to the text and compute the next distribution (one forward pass)."""
        self.inputs = self.inputs.with_tokens(self.m, self.ids + [int(token_id)])
        self.chosen.append((int(token_id), how))
        self._refresh()

    def undo(self) -> None:
        """Take the last chosen token back."""
        if self.chosen:
            self.inputs = self.inputs.with_tokens(self.m, self.ids[:-1])
            self.chosen.pop()
            self._refresh()
