"""Probes, steering and the toy model of superposition against independent computations.

Probes: scikit-learn fitted here on hidden states from a plain transformers forward pass. Steering: the
vector and the steered metric recomputed with the real blocks wrapped in plain torch. The toy: its loss
measured again with numpy on fresh samples, its directions read from its weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plain_torch import AddedBlock

import llminspect as li
from llminspect.analysis import probes, steering
from llminspect.analysis.superposition import toy_superposition


def test_the_control_labels_are_per_word_and_balanced_within_each_label():
    data = probes.number_sentences()
    control = probes.control_labels(data.words, data.labels, seed=0)
    given = {}
    for word, label in zip(data.words, control, strict=True):
        assert given.setdefault(word, label) == label  # a word keeps its label in every text
    for task in (0, 1):  # half the singular words get 0, half 1: the control cannot follow number itself
        labels = [given[w] for w in sorted({w for w, t in zip(data.words, data.labels, strict=True) if t == task})]
        assert sorted(labels) == [0] * 6 + [1] * 6
    assert probes.control_labels(data.words, data.labels, seed=1) != control
    assert len(set(data.texts)) == len(data.texts) == 240 and sum(data.labels) == 120


@pytest.mark.slow  # 40 plain forward passes and 124 fits beside the probe's own
def test_a_probe_equals_scikit_learn_on_the_models_own_hidden_states(decoder):
    every = probes.number_sentences()  # one text in six: 40 texts, both labels, every subject word
    data = probes.ProbeData(every.texts[::6], every.labels[::6], every.words[::6], every.label_names, every.groups[::6])
    found = decoder.probe(data, seed=0, test_share=0.5)
    with torch.no_grad():
        hidden = [decoder.model(input_ids=torch.tensor([decoder.tokenizer(t).input_ids]), output_hidden_states=True)
                  .hidden_states for t in data.texts]  # fmt: skip
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    labels = np.array(data.labels)
    train, test = train_test_split(np.arange(len(labels)), test_size=0.5, random_state=0, stratify=labels)
    assert sorted(train.tolist()) == found.train
    control = np.array(probes.control_labels(data.words, data.labels, 0))
    for layer in (0, 5, 20):  # hidden_states[l]: the stream before block l (the last is after the final norm)
        features = np.stack([h[layer][0, -1].numpy() for h in hidden])
        torch.testing.assert_close(found.features[:, layer], torch.tensor(features), atol=1e-4, rtol=1e-4)
        for target, got in ((labels, found.accuracy[layer]), (control, found.control[layer])):
            scaler = StandardScaler().fit(features[train])
            fitted = LogisticRegression(max_iter=2000).fit(scaler.transform(features[train]), target[train])
            assert fitted.score(scaler.transform(features[test]), target[test]) == pytest.approx(got, abs=1e-9)
    assert found.selectivity.tolist() == (found.accuracy - found.control).tolist()


def test_next_word_probabilities_equal_plain_softmaxes(decoder):
    texts = ["The dogs near the tree", "The dog near the trees", "The capital of France is"]
    found = probes.next_word_probabilities(decoder, texts, [" is", " are"])
    for row, text in enumerate(texts):
        with torch.no_grad():
            logits = decoder.model(input_ids=torch.tensor([decoder.tokenizer(text).input_ids])).logits[0, -1]
        probabilities = logits.double().softmax(-1)
        expected = [float(probabilities[decoder.tokenizer(w).input_ids[0]]) for w in (" is", " are")]
        np.testing.assert_allclose(found[row], expected, rtol=1e-5, atol=1e-9)


def plain_steered_metric(model, tokenizer, prompt_ids, layer, vector, words):
    """The metric after ``prompt_ids`` with ``vector`` added to block ``layer``'s input from position 1."""
    blocks = model.model.layers
    original = blocks[layer]
    if vector is not None:
        blocks[layer] = AddedBlock(original, 1, vector)
    try:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt_ids])).logits[0, -1].double()
    finally:
        blocks[layer] = original
    logp = logits.log_softmax(-1)
    ids = [[tokenizer(w).input_ids[0] for w in side] for side in words]
    return float(logp[ids[0]].mean() - logp[ids[1]].mean())


def test_steering_equals_the_blocks_wrapped_in_plain_torch(decoder):
    prompts, words, layer = ["I think you are", "The weather is"], ([" good", " nice"], [" bad"]), 6
    found = decoder.steering(prompts, " Love", " Hate", words, layers=[layer], coefficients=[4.0], controls=1)
    start = decoder.tokenizer.bos_token_id
    love, hate = ([start, *decoder.tokenizer(w).input_ids] for w in (" Love", " Hate"))
    space = decoder.tokenizer(" ").input_ids
    love = love + space * (len(hate) - len(love))  # ActAdd pads the shorter prompt with spaces
    with torch.no_grad():
        streams = [decoder.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layer][0]
                   for ids in (love, hate)]  # fmt: skip
    vector = streams[0][1:] - streams[1][1:]
    torch.testing.assert_close(found.norms[0], vector.norm(), rtol=1e-4, atol=1e-3)
    for row, prompt in enumerate(prompts):
        ids = [start, *decoder.tokenizer(prompt).input_ids]
        plain = plain_steered_metric(decoder.model, decoder.tokenizer, ids, layer, None, words)
        steered = plain_steered_metric(decoder.model, decoder.tokenizer, ids, layer, 4.0 * vector, words)
        assert float(found.baseline[row]) == pytest.approx(plain, abs=1e-4)
        assert float(found.per_prompt[0, 0, row]) == pytest.approx(steered - plain, abs=2e-4)
        noise = steering.same_norm_noise(vector, seed=0 * 1000 + layer * 10 + 1)
        torch.testing.assert_close(noise.norm(dim=-1), vector.norm(dim=-1), rtol=1e-5, atol=1e-4)
        randomised = plain_steered_metric(decoder.model, decoder.tokenizer, ids, layer, 4.0 * noise, words)
        assert float(found.random_per_prompt[0, 0, 0, row]) == pytest.approx(randomised - plain, abs=2e-4)


def test_steering_and_probes_refuse_clearly(decoder, encoder, toy):
    with pytest.raises(li.LLMInspectError, match="decoder models"):
        encoder.steering(["a"], " good", " bad", ([" good"], [" bad"]), layers=[1], coefficients=[1.0])
    with pytest.raises(li.LLMInspectError, match="layer=40"):
        decoder.steered_text("I think", " Love", " Hate", layer=40, coefficient=4.0)
    with pytest.raises(li.LLMInspectError, match="A probe works for encoder models and decoder models"):
        toy.probe(probes.number_sentences())
    with pytest.raises(li.LLMInspectError, match="two different labels"):
        decoder.probe(probes.ProbeData(["a b", "c d"], [1, 1], ["a", "c"], ("x", "y"), ["a", "c"]))


def test_the_toy_model_learns_what_its_weights_say():
    threads = torch.get_num_threads()
    toy = toy_superposition(sparsities=[0.0, 0.97], steps=1500, seed=0)
    generator = np.random.default_rng(1)
    for index, sparsity in enumerate(toy.sparsities):  # the loss again, with numpy, on fresh samples
        x = generator.random((20000, 5)) * (generator.random((20000, 5)) >= sparsity)
        w, b = toy.weights[index].numpy().astype(float), toy.biases[index].numpy().astype(float)
        out = np.maximum(x @ w.T @ w + b, 0)
        loss = float(((toy.importance.numpy() * (x - out) ** 2).sum(-1)).mean())
        assert loss == pytest.approx(float(toy.loss[index]), rel=0.1, abs=2e-3)
    norms = np.linalg.norm(toy.weights.numpy(), axis=1)
    assert toy.represented().tolist() == (norms > 0.5).sum(-1).tolist() == [2, 5]
    np.testing.assert_allclose(toy.interference()[0].numpy(), toy.weights[0].numpy().T @ toy.weights[0].numpy(),
                               atol=1e-6)  # fmt: skip
    with pytest.raises(li.LLMInspectError, match="sparsities"):
        toy_superposition(sparsities=[1.0])
    assert torch.get_num_threads() == threads  # it trains on one thread, then gives the setting back
