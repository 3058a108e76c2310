"""Lesson 6 views show the walk's, the stream's and the lens's numbers, escaped."""

from __future__ import annotations

import html

import numpy as np
import torch

import llminspect as li
from llminspect.analysis.outline import module_tree
from llminspect.analysis.residual import residual_stream
from llminspect.analysis.steps import Step, Walk
from llminspect.analysis.tokens import Tokens

HOSTILE = "<script>alert(1)</script>"


def test_outline_counts_parameters_and_collapses_repeated_blocks(decoder):
    walk = decoder.walk("The quick brown fox")
    tree = module_tree(decoder.model, walk)
    assert tree.parameters == sum(p.numel() for p in decoder.model.parameters())  # tied head counted once
    layers = tree.children[0].children[1]
    assert layers.name == "layers"
    assert layers.parameters == sum(p.numel() for p in decoder.model.model.layers.parameters())
    assert [c.same_as_first for c in layers.children] == [False] + [True] * 29
    assert layers.children[0].children[0].name == "self_attn" and layers.children[0].children[0].output_shape == (
        4,
        576,
    )
    assert layers.children[5].output_shape == (4, 576)  # collapsed blocks keep their shapes
    page = li.views.outline(tree).body
    assert page.count("same parts as 0") == 29
    assert "134.5M params" in page and "weight tied to model.embed_tokens" in page and "→ [4, 49152]" in page


def test_steps_table_and_stepper_show_each_steps_numbers(decoder):
    walk = decoder.walk("The quick brown fox", how="by hand")
    table = li.views.steps_table(walk).body
    for step in walk.steps[:5]:
        assert f"{float(step.output.norm(dim=-1).mean()):.2f}</td>" in table
    stepper = li.labs.walk(walk)
    slider, info, output = stepper.children
    slider.value = 3
    assert html.escape(walk[3].name) in info.value and "[4, 576]" in info.value
    figure = output.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert figure["layout"]["title"]["text"].startswith(html.escape(walk[3].name, quote=False))


def test_step_views_escape_token_and_step_text():
    tokens = Tokens(HOSTILE, [1, 2], [HOSTILE, "b"], [(0, 25), (25, 26)], [False, False], [HOSTILE.encode(), b"b"])
    walk = Walk("decoder", "hooks", tokens, [Step(HOSTILE, "embedding", HOSTILE, torch.ones(2, 3))])
    assert HOSTILE not in li.views.steps_table(walk).body
    assert HOSTILE not in li.labs.walk(walk).children[1].value
    figure = li.views.layers.step_figure(walk[0], tokens.labels)
    assert HOSTILE not in figure.layout.title.text and HOSTILE not in str(figure.layout.yaxis.ticktext)


def test_logit_lens_figure_draws_the_lens_numbers(decoder):
    lens = decoder.logit_lens("The capital of France is", answer=" Paris")
    figure = li.views.logit_lens(lens)
    np.testing.assert_allclose(np.array(figure.data[0].z), lens.top_probs.numpy(), rtol=1e-6)
    assert np.array(figure.data[0].customdata).tolist() == lens.answer_rank.tolist()
    assert figure.data[0].text[-1][-1] == "␣Paris"
    entropy = li.views.logit_lens(lens, color="entropy")
    np.testing.assert_allclose(np.array(entropy.data[0].z), lens.entropy.numpy(), rtol=1e-6)
    ranks = li.views.answer_rank(lens)
    assert list(ranks.data[0].y) == lens.answer_rank[:, -1].tolist()


def test_residual_and_rotary_figures_draw_their_data(decoder):
    stream = residual_stream(decoder.walk("The quick brown fox", how="by hand"))
    figure = li.views.residual_stream(stream)
    lines = [trace for trace in figure.data if trace.type == "scatter"]
    np.testing.assert_allclose(lines[0].y, stream.stream_norm[:, 0].numpy(), rtol=1e-6)
    bars = {trace.name: trace for trace in figure.data if trace.type == "bar"}
    np.testing.assert_allclose(bars["MLP"].y[0], float(stream.added_norm[1].mean()), rtol=1e-6)
    rope = decoder.rotary("The quick brown fox")
    drawn = li.views.rotary(rope)
    np.testing.assert_allclose(np.array(drawn.data[0].z), (rope.angles % (2 * np.pi)).numpy(), rtol=1e-6)
