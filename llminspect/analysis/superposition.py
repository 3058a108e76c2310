"""A toy model of superposition (Elhage et al. 2022, "Toy Models of Superposition"): 5 features, 2 dimensions.

Each input has 5 features; each is 0 with probability ``sparsity`` and otherwise uniform in [0, 1].
Feature i matters ``importance**i`` as much as feature 0. The model squeezes them into 2 numbers
and back: ``h = W x`` (W is 2 x 5), ``x' = ReLU(Wᵀ h + b)``, trained to minimise the
importance-weighted squared error. With dense features it keeps the 2 most important ones,
orthogonal, and drops the rest; as features get sparser it packs more of them into the 2
dimensions at once — *superposition* — accepting a little interference because two features are
rarely on together, until at high sparsity all 5 sit around a pentagon.

Every sparsity trains at once, as one batch of independent models (the paper's code does the
same), with Adam, seeded, on one CPU thread: the tensors are tiny, and a second thread only waits
for the first (on a busy machine, twenty times slower). About a second for 2,000 steps.

Example:
    >>> toy = toy_superposition(sparsities=[0.0, 0.97], steps=1500, seed=0)
    >>> toy.represented().tolist()
    [2, 5]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.threads import one_thread
from llminspect.errors import InputError


@dataclass(frozen=True)
class ToySuperposition:
    """The trained toy models, one per sparsity: their weights, biases and final loss."""

    sparsities: list[float]
    importance: torch.Tensor  # [features]: how much each feature's error counts
    weights: torch.Tensor  # [sparsities, hidden, features]: column i is feature i's direction in the 2-D space
    biases: torch.Tensor  # [sparsities, features]
    loss: torch.Tensor  # [sparsities]: importance-weighted squared error at the end of training
    seed: int

    def norms(self) -> torch.Tensor:
        """[sparsities, features]: the length of each feature's direction (about 1: represented; about 0: dropped)."""
        return self.weights.norm(dim=1)

    def represented(self, threshold: float = 0.5) -> torch.Tensor:
        """[sparsities]: how many features have a direction longer than ``threshold``."""
        return (self.norms() > threshold).sum(-1)

    def interference(self) -> torch.Tensor:
        """[sparsities, features, features]: WᵀW — 1 on the diagonal for a represented feature; off the diagonal,
        how much one feature's direction overlaps another's (0: orthogonal, no interference)."""
        return self.weights.transpose(1, 2) @ self.weights


def sample(batch: int, features: int, sparsity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[models, batch, features]: each feature 0 with probability ``sparsity`` (per model), else uniform in [0, 1]."""
    values = torch.rand(len(sparsity), batch, features, generator=generator)
    on = torch.rand(len(sparsity), batch, features, generator=generator) >= sparsity[:, None, None]
    return values * on


def reconstruct(weights: torch.Tensor, biases: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """ReLU(Wᵀ W x + b) for each model: x [models, batch, features] -> the same shape."""
    hidden = torch.einsum("mhf,mbf->mbh", weights, x)
    return torch.relu(torch.einsum("mhf,mbh->mbf", weights, hidden) + biases[:, None, :])


def toy_superposition(sparsities: list[float] = (0.0, 0.7, 0.9, 0.97), features: int = 5, hidden: int = 2,
                      importance: float = 0.9, steps: int = 2000, batch: int = 1024, seed: int = 0,
                      rate: float = 1e-2) -> ToySuperposition:  # fmt: skip
    """Train one toy model per sparsity (all together) and return their weights."""
    sparsities = [float(s) for s in sparsities]
    if not sparsities or not all(0 <= s < 1 for s in sparsities):
        raise InputError(f"sparsities={sparsities}: each is the chance a feature is 0, from 0 up to (not) 1.")
    features, hidden = whole_number(features, "features"), whole_number(hidden, "hidden")
    steps, batch = whole_number(steps, "steps"), whole_number(batch, "batch")
    generator = torch.Generator().manual_seed(whole_number(seed, "seed", minimum=0))
    weights = (torch.randn(len(sparsities), hidden, features, generator=generator) * 0.5).requires_grad_(True)
    biases = torch.zeros(len(sparsities), features, requires_grad=True)
    weight_of = importance ** torch.arange(features, dtype=torch.float32)
    chance = torch.tensor(sparsities)
    optimiser = torch.optim.Adam([weights, biases], lr=rate)
    with torch.enable_grad(), one_thread():
        for _ in range(steps):
            x = sample(batch, features, chance, generator)
            error = (weight_of * (x - reconstruct(weights, biases, x)) ** 2).sum(-1).mean(-1)
            optimiser.zero_grad()
            error.sum().backward()
            optimiser.step()
    return ToySuperposition(sparsities, weight_of, weights.detach().clone(), biases.detach().clone(),
                            error.detach().clone(), seed)  # fmt: skip
