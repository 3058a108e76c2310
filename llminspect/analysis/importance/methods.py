"""Attribution methods, one record each: what it reads, whether its scores carry a sign, what it costs, how it runs.

Adding a method is adding one ``Method`` to ``METHODS``. Every method turns a ``Problem`` (the
input, its baseline and one scalar function per target; see ``problems``) into one score per
source unit for target k, with the function at the input and the baseline where it defines them.

Example:
    >>> [name for name, method in METHODS.items() if not method.signed]
    ['saliency', 'attention']
    >>> METHODS["feature_ablation"].passes(sources=6, n_steps=50, n_samples=25)
    7
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Result:
    """One target's scores per source unit, and the function at the input / the baseline / IG's delta."""

    scores: torch.Tensor
    f_input: float
    f_baseline: float | None = None
    delta: float | None = None


@dataclass(frozen=True)
class Method:
    """How one attribution method runs, and what its numbers mean."""

    name: str
    signed: bool  # False: magnitudes only (saliency, attention)
    reads_log: bool  # by default it attributes the log-probability (perturbations) or the probability
    passes: Callable[..., int]  # model passes per target: f(sources, n_steps, n_samples)
    run: Callable[..., Result]  # f(problem, k, options) -> Result


def _ends(problem, k: int) -> tuple[float, float]:
    """The function at the input and at the baseline, in one batched forward pass."""
    with torch.no_grad():
        return tuple(problem.functions[k](torch.cat([problem.inputs, problem.baseline])).tolist())


def per_unit(attributions: torch.Tensor, problem, magnitude: bool = False) -> torch.Tensor:
    """Per-unit scores from per-feature attributions [1, units, features] (summed, or the norm)."""
    values = attributions[0].norm(dim=-1) if magnitude else attributions[0].sum(-1)
    if problem.feature_mask is None:
        return values[problem.positions].float().cpu()
    groups = problem.feature_mask[0, :, 0]
    return torch.stack([values[groups == g].sum() for g in problem.positions]).float().cpu()


def _integrated_gradients(problem, k: int, options: dict) -> Result:
    from captum.attr import IntegratedGradients

    f_input, f_base = _ends(problem, k)
    attributions, delta = IntegratedGradients(problem.functions[k]).attribute(
        problem.inputs, baselines=problem.baseline, n_steps=options["n_steps"],
        internal_batch_size=options["internal_batch_size"], return_convergence_delta=True,
    )  # fmt: skip
    return Result(per_unit(attributions, problem), f_input, f_base, float(delta[0]))


def _gradient(explainer_name: str, magnitude: bool):
    def run(problem, k: int, options: dict) -> Result:
        import captum.attr

        explainer = getattr(captum.attr, explainer_name)(problem.functions[k])
        extra = {"abs": False} if explainer_name == "Saliency" else {}
        inputs = problem.inputs.detach().clone().requires_grad_(True)  # captum warns when it must switch this on
        return Result(per_unit(explainer.attribute(inputs, **extra), problem, magnitude), _ends(problem, k)[0])

    return run


def _perturbation(explainer_name: str):
    def run(problem, k: int, options: dict) -> Result:
        import captum.attr

        f_input, f_base = _ends(problem, k)
        mask = problem.feature_mask
        if mask is None:  # one group per position of the sequence
            mask = torch.arange(problem.inputs.shape[1], device=problem.inputs.device)[None, :, None]
            mask = mask.expand_as(problem.inputs).contiguous()
        extra = {"n_samples": options["n_samples"]} if explainer_name == "ShapleyValueSampling" else {}
        with torch.no_grad():
            attributions = getattr(captum.attr, explainer_name)(problem.functions[k]).attribute(
                problem.inputs, baselines=problem.baseline, feature_mask=mask,
                perturbations_per_eval=options["internal_batch_size"], **extra,
            )  # fmt: skip
        # every feature of a group carries the group's score: read one per group
        first = attributions[0, :, 0]
        if problem.feature_mask is None:
            scores = first[problem.positions]
        else:
            groups = problem.feature_mask[0, :, 0]
            scores = torch.stack([first[groups == g][0] for g in problem.positions])
        return Result(scores.float().cpu(), f_input, f_base)

    return run


def _attention(problem, k: int, options: dict) -> Result:
    return Result(problem.attention(k).float().cpu(), _ends(problem, k)[0])


METHODS = {
    method.name: method
    for method in (
        Method("integrated_gradients", True, False, lambda sources, n_steps, n_samples: n_steps,
               _integrated_gradients),
        Method("gradient_x_input", True, False, lambda sources, n_steps, n_samples: 1,
               _gradient("InputXGradient", magnitude=False)),
        Method("saliency", False, False, lambda sources, n_steps, n_samples: 1, _gradient("Saliency", magnitude=True)),
        Method("feature_ablation", True, True, lambda sources, n_steps, n_samples: sources + 1,
               _perturbation("FeatureAblation")),
        Method("shapley", True, True, lambda sources, n_steps, n_samples: n_samples * (sources + 1),
               _perturbation("ShapleyValueSampling")),
        Method("attention", False, False, lambda sources, n_steps, n_samples: 1, _attention),
    )
}  # fmt: skip
