"""The next-token distribution of a decoder, and token healing.

``next_tokens`` is the plain softmax of the last position's logits. ``heal`` shows why a prompt
that ends inside a would-be token ("http:" instead of "http://") misleads a model: byte-level
BPE trained on "://" as one token rarely saw ":" followed by "//". Token healing backs up over
the last token and lets the model choose any token that *starts with* the removed text.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> healed = heal(m, "The url is http:")
    >>> healed.removed, healed.after.tokens[0]
    (':', '://')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from .errors import FamilyError, InputError
from .tokens import bytes_of, special_token_ids


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


def _require_decoder(inspector, what: str) -> None:
    if inspector.family != "decoder":
        raise FamilyError(
            f"{what} needs a decoder (a model that predicts the next token); "
            f"{inspector.name} is from the {inspector.family} family."
        )


def _last_probabilities(inspector, ids: list[int]) -> torch.Tensor:
    """Next-token probabilities after ``ids``, in float64 so entropies over ~50k tokens stay exact."""
    with torch.no_grad():
        logits = inspector.model(input_ids=torch.tensor([ids], device=inspector.device)).logits[0, -1]
    return logits.double().softmax(-1).cpu()


def _top(inspector, prompt: str, probs: torch.Tensor, k: int) -> NextTokens:
    values, indices = probs.topk(min(k, int((probs > 0).sum())))
    return NextTokens(
        prompt=prompt,
        ids=indices.tolist(),
        tokens=[inspector.tokenizer.decode([i]) for i in indices.tolist()],
        probabilities=values.tolist(),
        entropy=float(torch.special.entr(probs).sum() / math.log(2)),
    )


def next_tokens(inspector, prompt: str, k: int = 10) -> NextTokens:
    """The ``k`` likeliest next tokens after ``prompt`` and their probabilities."""
    _require_decoder(inspector, "next_tokens")
    tokens = inspector.checked_tokens(prompt)
    probs = _last_probabilities(inspector, tokens.ids)
    return _top(inspector, prompt, probs, k)


@functools.lru_cache(maxsize=4)
def _vocabulary_bytes(tokenizer) -> list[bytes]:
    strings = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = special_token_ids(tokenizer)
    return bytes_of(tokenizer, [s or "" for s in strings], [i in special for i in range(len(strings))])


def heal(inspector, prompt: str, k: int = 10) -> HealedPrompt:
    """Compare the next tokens of ``prompt`` with those after token healing."""
    _require_decoder(inspector, "Token healing")
    tokens = inspector.checked_tokens(prompt)
    real = [i for i, special in enumerate(tokens.special) if not special]
    if len(real) < 2:
        raise InputError("Token healing backs up over the last token, so the prompt needs at least two tokens.")
    last = real[-1]
    removed = tokens.token_bytes[last]
    vocabulary = _vocabulary_bytes(inspector.tokenizer)
    allowed = torch.tensor([raw.startswith(removed) for raw in vocabulary])
    probs = _last_probabilities(inspector, tokens.ids[:last])[: len(vocabulary)]
    kept = torch.where(allowed, probs, torch.zeros_like(probs))
    mass = float(kept.sum())
    healed = kept / mass
    return HealedPrompt(
        prompt=prompt,
        removed=removed.decode("utf-8", errors="replace"),
        before=next_tokens(inspector, prompt, k),
        after=_top(inspector, prompt[: tokens.offsets[last][0]], healed, k),
        mass=mass,
    )
