"""The views of lessons 09 and 10 draw exactly their data: each number on a figure is read back and compared."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llminspect import views
from llminspect.analysis.circuits import Induction, InductionAblation, SwitchedOff
from llminspect.analysis.logit_attribution import LogitAttribution
from llminspect.analysis.probes import Probe
from llminspect.analysis.steering import SteeredText, Steering
from llminspect.analysis.superposition import toy_superposition
from llminspect.analysis.tokens import Tokens

GENERATOR = torch.Generator().manual_seed(0)


def random(*shape) -> torch.Tensor:
    return torch.rand(*shape, generator=GENERATOR, dtype=torch.float64)


def induction() -> Induction:
    losses = torch.cat([torch.tensor([float("nan")]), random(7) * 10])
    return Induction(["a"] * 8, list(range(8)), 4, 0, losses, random(2, 3, 8, 8).float(), random(2, 3), random(2, 3),
                     random(2, 3, 4))  # fmt: skip


def test_induction_views_draw_the_losses_the_scores_and_the_ablation():
    found = induction()
    figure = views.induction_heads(found)
    np.testing.assert_allclose(figure.data[0].z, found.induction.numpy())
    np.testing.assert_allclose(figure.data[1].z, found.previous_token.numpy())
    sets = [SwitchedOff("top 1 induction heads", [(1, 2)], found.losses + 1, found.losses + 2),
            SwitchedOff("random heads 1", [(0, 0)], found.losses, found.losses + 0.5)]  # fmt: skip
    ablation = InductionAblation(4, found.losses, sets)
    bars = views.induction_ablation(ablation).data
    second = found.losses[5:8].mean().item()  # tokens period + 1 .. end
    assert [bar.y for bar in bars] == [pytest.approx((second + 1, second)), pytest.approx((second + 2, second + 0.5))]
    lines = views.induction_losses(found, ablation).data
    np.testing.assert_allclose(np.array(lines[0].y, dtype=float)[1:], found.losses[1:].numpy())
    np.testing.assert_allclose(np.array(lines[2].y, dtype=float)[1:], (found.losses + 2)[1:].numpy())


def test_attribution_views_draw_each_share_and_the_lens():
    layers = 3
    found = LogitAttribution(Tokens("x", [1], ["x"], [(0, 1)], [False]), "␣Paris", "␣Rome", 1.5, 2.0, "RMSNorm", 0.1,
                             random(layers), random(layers), random(layers, 2),
                             torch.zeros(layers, dtype=torch.float64), 0.0, random(layers + 1) + 1,
                             random(layers + 1))  # fmt: skip
    bars, mlp, running, lens = views.logit_attribution(found).data
    np.testing.assert_allclose(bars.y, found.attention.numpy())
    np.testing.assert_allclose(mlp.y, found.mlp.numpy())
    np.testing.assert_allclose(running.y, found.running.numpy())
    np.testing.assert_allclose(lens.y, found.lens.numpy())
    np.testing.assert_allclose(views.head_attribution(found).data[0].z, found.heads.numpy())


def test_probe_steering_and_toy_views_draw_their_numbers():
    found = Probe(["embeddings", "layer 0", "layer 1"], np.array([0.5, 0.9, 1.0]), np.array([0.5, 0.7, 0.95]), 0.5,
                  [0], [1], ("singular", "plural"))  # fmt: skip
    task, control, selectivity = views.probe(found).data
    assert list(task.y) == [0.5, 0.9, 1.0] and list(control.y) == [0.5, 0.7, 0.95]
    np.testing.assert_allclose(selectivity.y, [0.0, 0.2, 0.05])
    sweep = Steering(["a", "b"], " Love", " Hate", ([" good"], [" bad"]), [3, 6], [2.0, 5.0],
                     random(2), random(2, 2, 2), random(2, 2, 3, 2), random(2))  # fmt: skip
    drawn = views.steering(sweep).data
    np.testing.assert_allclose(drawn[0].y, sweep.shift[:, 0].numpy())
    np.testing.assert_allclose(drawn[1].y, sweep.random_shift[:, 0].flatten().numpy())
    np.testing.assert_allclose(drawn[2].y, sweep.shift[:, 1].numpy())
    page = views.steered_text(SteeredText("<b>I", 3, 4.0, " plain", " <script>", " noise"))._repr_html_()
    assert "&lt;script&gt;" in page and "<script>" not in page and "&lt;b&gt;I" in page
    toy = toy_superposition(sparsities=[0.0], steps=50, seed=0)
    for feature, line in enumerate(views.superposition(toy).data):
        np.testing.assert_allclose([line.x[1], line.y[1]], toy.weights[0, :, feature].numpy(), rtol=1e-6)
