"""The next-token distribution of a decoder: the top tokens, token healing, a tree of continuations, surprisal.

``next_tokens`` is the plain softmax of the last position's logits. ``healing`` shows why a prompt
that ends inside a would-be token ("http:" instead of "http://") misleads a model: byte-level
BPE trained on "://" as one token rarely saw ":" followed by "//". Token healing backs up over
the last token and lets the model choose any token that *starts with* the removed text.

Example:
    >>> import llminspect as li
    >>> healed = li.load("decoder").healing("The url is http:")
    >>> healed.removed, healed.after.tokens[0]
    (':', '://')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import list_of_texts
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import run
from llminspect.analysis.tokens import bytes_of, single_token, special_token_ids
from llminspect.errors import InputError


@dataclass(frozen=True)
class NextTokens:
    """The top of a next-token distribution."""

    prompt: str
    ids: list[int]
    tokens: list[str]  # decoded text of each candidate
    probabilities: list[float]
    entropy: float  # of the whole distribution, in bits

    def rows(self) -> list[dict]:
        return [
            {"token": t, "id": i, "probability": p}
            for t, i, p in zip(self.tokens, self.ids, self.probabilities, strict=True)
        ]


@dataclass(frozen=True)
class Healing:
    """A prompt's next tokens as written, and after backing up over its last token."""

    prompt: str
    removed: str  # the text of the last token, taken back
    before: NextTokens  # the model's guesses after the full prompt
    after: NextTokens  # guesses after the shortened prompt, among tokens starting with ``removed``
    mass: float  # total probability the shortened prompt gave to those tokens


def last_probabilities(m, inputs: Inputs, edit=None, rows: int = 1) -> torch.Tensor:
    """Next-token probabilities after ``inputs`` [rows, vocab], in float64 so entropies over ~50k tokens stay
    exact; ``edit`` (site -> function, ``analysis.sites``) changes the model on the way, one batch row each."""
    logits = run(m, inputs, edit=edit, rows=rows, last_only=True).logits[:, -1]
    return logits.double().softmax(-1).cpu()


def top_tokens(m, prompt: str, probs: torch.Tensor, k: int) -> NextTokens:
    """The ``k`` likeliest tokens of one distribution ``probs`` [vocab] after ``prompt``."""
    values, indices = probs.topk(min(k, int((probs > 0).sum())))
    return NextTokens(
        prompt=prompt,
        ids=indices.tolist(),
        tokens=[m.tokenizer.decode([i]) for i in indices.tolist()],
        probabilities=values.tolist(),
        entropy=float(torch.special.entr(probs).sum() / math.log(2)),
    )


def next_tokens(m, inputs: Inputs, k: int = 10) -> NextTokens:
    """The ``k`` likeliest next tokens after the text of ``inputs`` and their probabilities."""
    m.require_decoder("next_tokens")
    return top_tokens(m, inputs.tokens.text, last_probabilities(m, inputs)[0], k)


def answer_probabilities(m, inputs: Inputs, answers: list[str]) -> dict[str, float]:
    """p(each one-token answer) as the next token after ``inputs``: the control that a model does a task
    (its answer moves when the prompt's deciding word does) before a hunt for how it does it."""
    m.require_decoder("answer_probabilities")
    ids = [single_token(m.tokenizer, answer) for answer in list_of_texts(answers, "answers")]
    probabilities = last_probabilities(m, inputs)[0]
    return {answer: float(probabilities[i]) for answer, i in zip(answers, ids, strict=True)}


@functools.lru_cache(maxsize=4)
def _vocabulary_bytes(tokenizer) -> list[bytes]:
    strings = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = special_token_ids(tokenizer)
    return bytes_of(tokenizer, [s or "" for s in strings], [i in special for i in range(len(strings))])


def healing(m, inputs: Inputs, k: int = 10) -> Healing:
    """Compare the next tokens of a prompt with those after token healing."""
    m.require_decoder("Token healing")
    tokens = inputs.tokens
    prompt = tokens.text
    real = [i for i, special in enumerate(tokens.special) if not special]
    if len(real) < 2:
        raise InputError("Token healing backs up over the last token, so the prompt needs at least two tokens.")
    last = real[-1]
    removed = tokens.token_bytes[last]
    vocabulary = _vocabulary_bytes(m.tokenizer)
    allowed = torch.tensor([raw.startswith(removed) for raw in vocabulary])
    probs = last_probabilities(m, inputs.with_tokens(m, tokens.ids[:last]))[0, : len(vocabulary)]
    kept = torch.where(allowed, probs, torch.zeros_like(probs))
    mass = float(kept.sum())
    healed = kept / mass
    return Healing(
        prompt=prompt,
        removed=removed.decode("utf-8", errors="replace"),
        before=next_tokens(m, inputs, k),
        after=top_tokens(m, prompt[: tokens.offsets[last][0]], healed, k),
        mass=mass,
    )


@dataclass(frozen=True)
class Branch:
    """One path of the continuation tree."""

    tokens: list[str]
    probability: float  # of the whole path: the product of its steps' probabilities


def branches(m, inputs: Inputs, width: int = 3, depth: int = 3) -> list[Branch]:
    """Every path that picks one of the ``width`` likeliest tokens at each of ``depth`` steps."""
    m.require_decoder("branches")
    if width * depth > 40 or width < 1 or depth < 1:
        raise InputError("Keep the tree small: width and depth at least 1, width x depth at most 40.")
    paths = [([], [], 1.0)]
    start = inputs.tokens.ids
    for _ in range(depth):
        grown = []
        for ids, names, p in paths:
            probs = last_probabilities(m, inputs.with_tokens(m, start + ids))[0]
            values, indices = probs.topk(width)
            for value, index in zip(values.tolist(), indices.tolist(), strict=True):
                grown.append((ids + [index], names + [m.tokenizer.decode([index])], p * value))
        paths = grown
    return [Branch(names, p) for _, names, p in sorted(paths, key=lambda path: -path[2])]


@dataclass(frozen=True)
class Surprisal:
    """How surprised the model is by each token of a text."""

    tokens: list[str]  # labels of the scored tokens (all but the first)
    bits: list[float]  # -log2 P(x_t | x_<t)
    perplexity: float  # exp(mean negative log-likelihood in nats) = 2 ** mean(bits)


def surprisal(m, inputs: Inputs) -> Surprisal:
    """Per-token surprisal and perplexity, from P(x) = prod_t P(x_t | x_<t).

    The first token has nothing before it, so it is not scored.
    """
    m.require_decoder("surprisal")
    tokens = inputs.tokens
    if len(tokens) < 2:
        raise InputError("Perplexity needs at least two tokens: the first one has nothing before it.")
    logits = run(m, inputs).logits[0, :-1]
    log_probs = logits.double().log_softmax(-1).cpu()
    nll = -log_probs[torch.arange(len(tokens) - 1), torch.tensor(tokens.ids[1:])]
    return Surprisal(tokens.labels[1:], (nll / math.log(2)).tolist(), float(nll.mean().exp()))
