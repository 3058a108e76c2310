"""Lesson 04: integrated gradients as a Riemann sum, checked against captum's ``IntegratedGradients``.

The learner walks from the baseline to the input in ``steps`` equal steps (α = 1/steps, 2/steps,
…, 1: the right Riemann sum), averages the gradients of ``f`` along the way and multiplies by
``x − baseline``. The referee is captum with ``method="riemann_right"`` on the decoder's
p(" Paris") from its input embeddings (zero baseline), and on a cubic with a zero and a non-zero
baseline, where the path matters.

Example:
    >>> import torch
    >>> cube = lambda batch: batch.pow(3).sum(-1)
    >>> [round(a, 2) for a in integrated_gradients(cube, torch.tensor([1.0, 2.0]), torch.zeros(2), 1000).tolist()]
    [1.0, 8.01]
"""

from __future__ import annotations

import torch

from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

PROMPT, ANSWER, STEPS = "The capital of France is", " Paris", 4


def integrated_gradients(f, x, baseline, steps):
    """Attributions [x's shape]: (x − baseline) × the mean gradient of f at baseline + α(x − baseline), α = k/steps."""
    alphas = torch.arange(1, steps + 1, dtype=x.dtype) / steps  # 1/steps ... 1: the right Riemann sum
    path = baseline + alphas.view(-1, *[1] * x.dim()) * (x - baseline)  # [steps, *x.shape]: one row per point
    path.requires_grad_(True)
    (gradients,) = torch.autograd.grad(f(path).sum(), path)  # f maps a batch of points to one number each
    return (x - baseline) * gradients.mean(dim=0)


def by_captum(f, x: torch.Tensor, baseline: torch.Tensor, steps: int) -> torch.Tensor:
    """The referee: captum's integrated gradients with the same right Riemann sum."""
    from captum.attr import IntegratedGradients

    found = IntegratedGradients(f).attribute(x[None], baselines=baseline[None], n_steps=steps, method="riemann_right")
    return found[0].detach()


def paris_problem():
    """f(embeddings) = p(" Paris") next after the prompt, the prompt's input embeddings, and a zero baseline."""
    m = course_models.embedded("decoder")
    inputs = m.inputs(PROMPT)
    ids = inputs.tensors["input_ids"]
    answer = m.tokenize(ANSWER).ids[0]
    x = m.model.get_input_embeddings()(ids)[0].detach()

    def p_answer(batch: torch.Tensor) -> torch.Tensor:
        return m.model(inputs_embeds=batch, use_cache=False).logits[:, -1].softmax(-1)[:, answer]

    return p_answer, x, torch.zeros_like(x)


def cube(batch: torch.Tensor) -> torch.Tensor:
    """A cubic (the sum of each number cubed): its path integral is known exactly, unlike a network's."""
    return batch.pow(3).sum(-1)


def cases() -> list[Case]:
    f, x, zero = paris_problem()
    generator = torch.Generator().manual_seed(4)
    small, shifted = torch.randn(6, generator=generator), torch.randn(6, generator=generator)
    found = [(f"p(' Paris') from the prompt's embeddings, zero baseline, {STEPS} steps", f, x, zero, STEPS),
             ("a cubic, zero baseline, 16 steps", cube, small, torch.zeros(6), 16),
             ("a cubic, a non-zero baseline, 16 steps", cube, small, shifted, 16)]  # fmt: skip
    return [Case(label, (g, a, b, n), by_captum(g, a, b, n)) for label, g, a, b, n in found]


def _mean_gradient(f, x, baseline, steps, alphas=None):
    alphas = torch.arange(1, steps + 1, dtype=x.dtype) / steps if alphas is None else alphas
    path = (baseline + alphas.view(-1, *[1] * x.dim()) * (x - baseline)).requires_grad_(True)
    (gradients,) = torch.autograd.grad(f(path).sum(), path)
    return gradients.mean(0)


def _no_difference(f, x, baseline, steps):
    return _mean_gradient(f, x, baseline, steps)


def _times_input(f, x, baseline, steps):
    return x * _mean_gradient(f, x, baseline, steps)


def _summed(f, x, baseline, steps):
    return (x - baseline) * _mean_gradient(f, x, baseline, steps) * steps


def _left_sum(f, x, baseline, steps):
    alphas = torch.arange(0, steps, dtype=x.dtype) / steps
    return (x - baseline) * _mean_gradient(f, x, baseline, steps, alphas)


def _gradient_times_input(f, x, baseline, steps):
    point = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(f(point[None]).sum(), point)
    return x * gradient


EXERCISE = CodeExercise(
    "Write integrated gradients as a Riemann sum: the points baseline + α(x − baseline) for α = 1/steps, …, 1, "
    "the mean of f's gradients there, times (x − baseline). It is checked against captum.",
    "integrated_gradients(f, x, baseline, steps) -> attributions", integrated_gradients, cases,
    [Mistake("forgetting × (x − baseline)", "the mean gradient says how fast f changes; the attribution is that "
             "rate times how far each number moved.", _no_difference),
     Mistake("multiplying by x instead of (x − baseline)", "the walk starts at the baseline: multiply by the "
             "distance travelled, x − baseline.", _times_input),
     Mistake("summing the gradients instead of averaging", "each of the steps covers 1/steps of the path: "
             "average them.", _summed),
     Mistake("starting α at 0 (the left Riemann sum)", "the walk starts at the baseline and ends at x: the last "
             "of the points is the input itself, the baseline is not one of them.", _left_sum),
     Mistake("gradient × input (no path at all)", "integrated gradients averages over the whole path from the "
             "baseline, not only at the input.", _gradient_times_input)],
    "the straight path from the baseline to the input, sampled at α = k/steps; the mean gradient along it times "
    "(x − baseline). By the fundamental theorem of calculus the attributions then sum to about f(x) − f(baseline) "
    "(completeness); the gap is the convergence delta, smaller with more steps.",
    tolerance=1e-4, absolute=1e-6, hint="check completeness: your attributions' sum should be close to "
    "f(x[None]) − f(baseline[None]).", if_not_finite="is one of your points the baseline itself? At an all-zero "
    "input this model's gradient is nan; the points are α = 1/steps, …, 1.",
)  # fmt: skip
