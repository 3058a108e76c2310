"""Token importance through captum: which inputs mattered for an output, by several methods.

captum does the attribution; ``problems`` chooses, per family, *what* is attributed and *to
what*; ``methods`` holds one record per method. This module ties them together:

- decoder: the probability of each ``target`` token (the next token by default) -> importance of
  every prompt token; ``contrast=`` explains "why A and not B".
- encoder: the cosine similarity with ``other`` (a second sentence) -> importance of each token.
- encoder-decoder: the probability of each written token -> importance of each *source* unit
  (the source text's tokens, or windows of audio time for Whisper).

Methods: ``integrated_gradients`` (reports its convergence delta: completeness says the scores
sum to f(input) - f(baseline)), ``gradient_x_input``, ``saliency`` (gradient norm, unsigned),
``feature_ablation`` and ``shapley`` (perturbation, run without gradients). ``attention`` is a
labelled comparison, not an attribution. Gradient methods attribute the probability (integrated
gradients converges on it; on the log-probability it does not at 50 steps); perturbation methods
attribute the log-probability (one missing token can drive a probability to ~0 whichever token it
is, which makes every token look equally vital). ``quantity=`` overrides either. Each source
unit is replaced by a baseline: the pad token's embedding by default ("pad"), the unknown
token's ("unk"), or zeros ("zero"); audio windows are replaced by the features of silence.

Example:
    >>> import llminspect as li
    >>> result = li.load("decoder").importance("The capital of France is", target=" Paris")
    >>> result.targets, abs(result.delta[0]) < 0.01
    ([' Paris'], True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from llminspect.analysis.importance.methods import METHODS
from llminspect.analysis.importance.problems import (
    BASELINES,
    Problem,
    decoder_problem,
    encoder_problem,
    seq2seq_problem,
)
from llminspect.analysis.inputs import Inputs
from llminspect.errors import FamilyError, InputError

__all__ = ["BASELINES", "METHODS", "Attribution", "attribute", "cost"]


@dataclass(frozen=True)
class Attribution:
    """Importance scores: one row per target, one column per source unit."""

    family: str
    method: str
    sources: list[str]  # token labels, or time windows ("0.40–0.50 s")
    targets: list[str]  # what was explained, one per row
    scores: torch.Tensor  # [targets, sources]
    quantity: str  # the function attributed, in words
    baseline: str  # what "absent" meant
    f_input: list[float]  # the function at the real input, per target
    f_baseline: list[float] | None  # ... and at the baseline (IG and perturbation methods)
    delta: list[float] | None  # IG only: sum(scores) - (f_input - f_baseline)
    passes: int  # model passes spent (forward, or forward + backward)
    signed: bool  # False for saliency and attention: magnitudes only
    windows: list[tuple[float, float]] | None = None  # audio: (start, end) seconds of each source
    waveform: np.ndarray | None = None  # audio: the clip, for drawing under the scores


def _method(name: str):
    if name not in METHODS:
        raise InputError(f"method={name!r}: choose one of {', '.join(METHODS)}.")
    return METHODS[name]


def cost(method: str, sources: int, targets: int, n_steps: int = 50, n_samples: int = 25) -> int:
    """Model passes a method needs (gradient methods count a forward + backward as one pass).

    Example:
        >>> cost("integrated_gradients", sources=6, targets=2), cost("feature_ablation", 6, 2)
        (100, 14)
    """
    return _method(method).passes(sources, n_steps, n_samples) * targets


def _problem(m, inputs: Inputs, target, other, contrast, baseline: str, window: float, log: bool) -> Problem:
    if m.family == "decoder":
        if other is not None:
            raise FamilyError("other= is the second sentence of an encoder's similarity; a decoder explains target=.")
        return decoder_problem(m, inputs, target, contrast, baseline, log)
    if contrast is not None:
        raise FamilyError("contrast= compares two next tokens of a decoder.")
    if m.family == "encoder":
        if target is not None:
            raise FamilyError(
                f"{m.name} is an encoder: it writes no target. Give other= a second sentence to explain the two "
                "sentences' similarity."
            )
        return encoder_problem(m, inputs, other, baseline)
    return seq2seq_problem(m, inputs, baseline, window, log)


def attribute(
    m,
    inputs: Inputs,
    method: str = "integrated_gradients",
    *,
    target: str | None = None,
    other: str | None = None,
    contrast: str | None = None,
    baseline: str = "pad",
    n_steps: int = 50,
    internal_batch_size: int = 25,
    n_samples: int = 25,
    window: float = 0.1,
    quantity: str | None = None,
    progress: bool | None = None,
) -> Attribution:
    """Importance of each source unit of ``inputs`` for each target; see the module docstring for the choices."""
    chosen = _method(method)
    if quantity is None:  # what each family of methods reads best
        quantity = "log_probability" if chosen.reads_log else "probability"
    if quantity not in ("probability", "log_probability"):
        raise InputError(f"quantity={quantity!r}: choose 'probability' or 'log_probability'.")
    problem = _problem(m, inputs, target, other, contrast, baseline, window, quantity == "log_probability")
    if method == "attention" and problem.attention is None:
        raise FamilyError(f"No attention comparison for {m.name}: use an attribution method.")
    passes = cost(method, len(problem.sources), len(problem.targets), n_steps, n_samples)
    steps = range(len(problem.targets))
    if progress or (progress is None and passes > 200):
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"{method} ({passes} passes)", leave=False)
    options = {"n_steps": n_steps, "internal_batch_size": internal_batch_size, "n_samples": n_samples}
    try:
        results = [chosen.run(problem, k, options) for k in steps]
    finally:  # also on KeyboardInterrupt (a cancelled cell): leave no gradients behind
        m.model.zero_grad(set_to_none=True)
    return Attribution(
        family=m.family,
        method=method,
        sources=problem.sources,
        targets=problem.targets,
        scores=torch.stack([r.scores.detach().float().cpu() for r in results]),
        quantity=problem.quantity,
        baseline="none (attention weights are not an attribution)" if method == "attention" else problem.baseline_text,
        f_input=[r.f_input for r in results],
        f_baseline=None if results[0].f_baseline is None else [r.f_baseline for r in results],
        delta=None if results[0].delta is None else [r.delta for r in results],
        passes=passes,
        signed=chosen.signed,
        windows=problem.windows,
        waveform=problem.waveform,
    )
