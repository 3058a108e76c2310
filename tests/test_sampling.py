"""Next-token distributions and token healing, against a raw forward and torch math."""

from __future__ import annotations

import math

import pytest
import torch

from llminspect import errors


def raw_last_probs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model.model(input_ids=torch.tensor([ids])).logits[0, -1].double().softmax(-1)


def test_next_tokens_are_the_softmax_of_the_last_logits(decoder):
    result = decoder.next_tokens("The capital of France is", k=5)
    probs = raw_last_probs(decoder, decoder.tokenizer("The capital of France is").input_ids)
    values, indices = probs.topk(5)
    assert result.ids == indices.tolist()
    assert result.probabilities == pytest.approx(values.tolist(), abs=1e-6)
    assert result.tokens[0] == " Paris"
    with torch.no_grad():
        logits = decoder.model(**decoder.tokenizer("The capital of France is", return_tensors="pt")).logits[0, -1]
    log_p = logits.double().log_softmax(-1)
    expected_entropy = -(log_p.exp() * log_p).sum().item() / math.log(2)  # in bits
    assert result.entropy == pytest.approx(expected_entropy, rel=1e-6)


def test_healing_renormalizes_over_tokens_that_start_with_the_removed_text(decoder):
    healed = decoder.heal("The url is http:", k=5)
    assert healed.removed == ":" and healed.after.prompt == "The url is http"
    tokenizer = decoder.tokenizer
    ids = tokenizer("The url is http:").input_ids
    probs = raw_last_probs(decoder, ids[:-1])
    # independent: which vocabulary entries decode to text starting with ":"
    allowed = torch.tensor([tokenizer.decode([i]).startswith(":") for i in range(len(tokenizer))])
    kept = torch.where(allowed, probs[: len(tokenizer)], 0.0)
    assert healed.mass == pytest.approx(kept.sum().item(), rel=1e-5)
    values, indices = (kept / kept.sum()).topk(5)
    assert healed.after.ids == indices.tolist()
    assert healed.after.probabilities == pytest.approx(values.tolist(), abs=1e-6)
    assert healed.after.tokens[0] == "://" and healed.after.probabilities[0] > 0.9
    assert healed.before.tokens[0] != "//" and "//" in healed.before.tokens  # "//" is there, but far behind
    assert healed.before.probabilities[healed.before.tokens.index("//")] < 0.1


def test_healing_and_next_tokens_need_a_decoder(encoder, decoder):
    with pytest.raises(errors.FamilyError, match="needs a decoder"):
        encoder.heal("The url is http:")
    with pytest.raises(errors.FamilyError, match="encoder family"):
        encoder.next_tokens("The url is")
    with pytest.raises(errors.InputError, match="at least two tokens"):
        decoder.heal("http")
    with pytest.raises(errors.EmptyInputError):
        decoder.next_tokens("")
