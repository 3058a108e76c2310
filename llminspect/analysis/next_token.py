"""The next-token distribution of a decoder: the top tokens, token healing, a tree of continuations, surprisal.

``next_tokens`` is the plain softmax of the last position's logits. ``heal`` shows why a prompt
that ends inside a would-be token ("http:" instead of "http://") misleads a model: byte-level
BPE trained on "://" as one token rarely saw ":" followed by "//". Token healing backs up over
the last token and lets the model choose any token that *starts with* the removed text.

Example:
    >>> import llminspect as li
    >>> healed = li.load("decoder").heal("The url is http:")
    >>> healed.removed, healed.after.tokens[0]
    (':', '://')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.tokens import bytes_of, special_token_ids
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
class HealedPrompt:
    """A prompt's next tokens as written, and after backing up over its last token."""

    prompt: str
    removed: str  # the text of the last token, taken back
    before: NextTokens  # the model's guesses after the full prompt
    after: NextTokens  # guesses after the shortened prompt, among tokens starting with ``removed``
    mass: float  # total probability the shortened prompt gave to those tokens


def _require_decoder(m, what: str) -> None:
    m.require_family(what, "decoder")
    m.require_lm_head(what)


def _last_probabilities(m, ids: list[int]) -> torch.Tensor:
    """Next-token probabilities after ``ids``, in float64 so entropies over ~50k tokens stay exact."""
    with torch.no_grad():
        logits = m.model(input_ids=torch.tensor([ids], device=m.device)).logits[0, -1]
    return logits.double().softmax(-1).cpu()


def _top(m, prompt: str, probs: torch.Tensor, k: int) -> NextTokens:
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
    _require_decoder(m, "next_tokens")
    return _top(m, inputs.tokens.text, _last_probabilities(m, inputs.tokens.ids), k)


@functools.lru_cache(maxsize=4)
def _vocabulary_bytes(tokenizer) -> list[bytes]:
    strings = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = special_token_ids(tokenizer)
    return bytes_of(tokenizer, [s or "" for s in strings], [i in special for i in range(len(strings))])


def heal(m, inputs: Inputs, k: int = 10) -> HealedPrompt:
    """Compare the next tokens of a prompt with those after token healing."""
    _require_decoder(m, "Token healing")
    tokens = inputs.tokens
    prompt = tokens.text
    real = [i for i, special in enumerate(tokens.special) if not special]
    if len(real) < 2:
        raise InputError("Token healing backs up over the last token, so the prompt needs at least two tokens.")
    last = real[-1]
    removed = tokens.token_bytes[last]
    vocabulary = _vocabulary_bytes(m.tokenizer)
    allowed = torch.tensor([raw.startswith(removed) for raw in vocabulary])
    probs = _last_probabilities(m, tokens.ids[:last])[: len(vocabulary)]
    kept = torch.where(allowed, probs, torch.zeros_like(probs))
    mass = float(kept.sum())
    healed = kept / mass
    return HealedPrompt(
        prompt=prompt,
        removed=removed.decode("utf-8", errors="replace"),
        before=next_tokens(m, inputs, k),
        after=_top(m, prompt[: tokens.offsets[last][0]], healed, k),
        mass=mass,
    )


@dataclass(frozen=True)
class Branch:
    """One path of the continuation tree."""

    tokens: list[str]
    probability: float  # of the whole path: the product of its steps' probabilities


def branches(m, inputs: Inputs, width: int = 3, depth: int = 3) -> list[Branch]:
    """Every path that picks one of the ``width`` likeliest tokens at each of ``depth`` steps."""
    _require_decoder(m, "branches")
    if width * depth > 40 or width < 1 or depth < 1:
        raise InputError("Keep the tree small: width and depth at least 1, width x depth at most 40.")
    paths = [([], [], 1.0)]
    start = inputs.tokens.ids
    for _ in range(depth):
        grown = []
        for ids, names, p in paths:
            probs = _last_probabilities(m, start + ids)
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
    _require_decoder(m, "surprisal")
    tokens = inputs.tokens
    if len(tokens) < 2:
        raise InputError("Perplexity needs at least two tokens: the first one has nothing before it.")
    with torch.no_grad():
        logits = m.model(**inputs.tensors).logits[0, :-1]
    log_probs = logits.double().log_softmax(-1).cpu()
    nll = -log_probs[torch.arange(len(tokens) - 1), torch.tensor(tokens.ids[1:])]
    return Surprisal(tokens.labels[1:], (nll / math.log(2)).tolist(), float(nll.mean().exp()))
