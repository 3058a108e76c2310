"""Greedy decoding vs beam search: the likeliest next token each time, or the likeliest whole continuation.

Greedy takes the top token at every step; beam search keeps the ``beams`` likeliest partial
continuations and extends each, so it can pass through a less likely token to reach a more likely
whole. Both run through transformers' own ``generate`` (``num_beams=1`` / ``num_beams=beams``, no
sampling); each token's log-probability is then read off one plain forward pass over the text.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> greedy, beam = greedy_and_beam(m, m.inputs("The capital of France is"), steps=4, beams=3)
    >>> beam.total >= greedy.total
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import run
from llminspect.analysis.tokens import token_labels
from llminspect.errors import InputError


@dataclass(frozen=True)
class Continuation:
    """What one decoding strategy wrote, token by token, with each token's log-probability (natural log)."""

    how: str
    text: str
    tokens: list[str]
    log_probs: list[float]

    @property
    def total(self) -> float:
        """log P(whole continuation | prompt): the sum over its tokens."""
        return sum(self.log_probs)


def _token_log_probs(m, prompt_ids: list[int], new_ids: list[int]) -> list[float]:
    logits = run(m, {"input_ids": torch.tensor([prompt_ids + new_ids], device=m.device)}).logits[0]
    log_probs = logits[len(prompt_ids) - 1 : -1].double().log_softmax(-1).cpu()
    return [float(log_probs[i, token]) for i, token in enumerate(new_ids)]


def greedy_and_beam(m, inputs: Inputs, steps: int = 8, beams: int = 4) -> tuple[Continuation, Continuation]:
    """The continuations of greedy decoding and of beam search (``beams`` beams), ``steps`` tokens each."""
    m.require_decoder("Greedy vs beam search")
    steps, beams = whole_number(steps, "steps", minimum=None), whole_number(beams, "beams", minimum=None)
    if not (1 <= steps <= 64 and 2 <= beams <= 16):
        raise InputError(f"steps={steps}, beams={beams}: take 1–64 steps and 2–16 beams.")
    prompt = inputs.tokens.ids
    found = []
    for how, count in (("greedy", 1), (f"beam search, {beams} beams", beams)):
        with torch.no_grad():
            out = m.model.generate(**inputs.tensors, do_sample=False, num_beams=count, max_new_tokens=steps,
                                   min_new_tokens=steps, pad_token_id=m.tokenizer.eos_token_id)  # fmt: skip
        new = out[0, len(prompt) :].tolist()
        found.append(Continuation(how, m.tokenizer.decode(new), token_labels(m.tokenizer, new),
                                  _token_log_probs(m, prompt, new)))  # fmt: skip
    return found[0], found[1]
