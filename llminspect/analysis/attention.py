"""Attention as data: per-head summaries, key/value sharing, masks, head search and alignments.

Everything here works on the tensors a ``Trace`` holds ([layers, heads, queries, keys]); nothing
draws. Summaries are means over query rows, so one number stands for one head:

- entropy: how spread out a row is, in bits (0 = all weight on one key);
- distance: the expected |query - key| (0 = looks at itself; large = looks far away);
- first token / previous token / self: the share of weight on key 0, on key i-1, on key i.

Example:
    >>> import torch
    >>> stats = head_statistics(torch.eye(3).expand(1, 1, 3, 3))
    >>> float(stats["self"][0, 0]), float(stats["entropy"][0, 0])
    (1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.sites import check_head, check_layer
from llminspect.analysis.tokens import Tokens, word_positions
from llminspect.errors import FamilyError, InputError

STATISTICS = ("entropy", "distance", "first token", "previous token", "self")


def _layer_statistics(attn: torch.Tensor) -> dict[str, torch.Tensor]:
    """Statistics of one layer's attention [heads, queries, keys] -> name: [heads]."""
    attn = attn.double()
    stats = {
        "entropy": (torch.special.entr(attn).sum(-1) / torch.log(torch.tensor(2.0, dtype=attn.dtype))).mean(-1),
        "first token": attn[..., 0].mean(-1),
    }
    queries, keys = attn.shape[-2:]
    if queries == keys:
        positions = torch.arange(queries, dtype=attn.dtype)
        stats["distance"] = (attn * (positions[:, None] - positions[None, :]).abs()).sum(-1).mean(-1)
        stats["self"] = attn.diagonal(dim1=-2, dim2=-1).mean(-1)
        previous = attn.diagonal(offset=-1, dim1=-2, dim2=-1)
        stats["previous token"] = previous.mean(-1) if queries > 1 else torch.zeros(attn.shape[0], dtype=attn.dtype)
    return stats


def head_statistics(attentions: torch.Tensor) -> dict[str, torch.Tensor]:
    """One number per head for each summary: name -> [layers, heads] (float32).

    Cross-attention (queries and keys from different sequences) has no distance, previous token
    or self: only entropy and first position are given for it.
    """
    if attentions.dim() != 4:
        raise InputError(f"Expected attentions shaped [layers, heads, queries, keys]; got {tuple(attentions.shape)}.")
    per_layer = [_layer_statistics(layer) for layer in attentions]  # a layer at a time keeps memory flat
    return {name: torch.stack([layer[name] for layer in per_layer]).float() for name in per_layer[0]}


def kv_groups(num_heads: int, num_key_value_heads: int | None) -> list[int]:
    """For each query head, the key/value head it reads (grouped-query attention).

    transformers repeats each key/value head for ``num_heads // num_key_value_heads`` consecutive
    query heads, so query head h uses key/value head h // group.

    Example:
        >>> kv_groups(9, 3)
        [0, 0, 0, 1, 1, 1, 2, 2, 2]
    """
    kv = num_key_value_heads or num_heads
    if num_heads % kv:
        raise InputError(f"{num_heads} query heads cannot share {kv} key/value heads evenly.")
    return [head // (num_heads // kv) for head in range(num_heads)]


@dataclass(frozen=True)
class HeadMatch:
    """How much one head sends from some tokens to others."""

    layer: int
    head: int
    weight: float  # mean over the 'from' tokens of the total weight on the 'to' tokens


def link_weights(attentions: torch.Tensor, tokens: Tokens, source: str, target: str) -> torch.Tensor:
    """[layers, heads]: in each head, the weight from word ``source``'s tokens to word ``target``'s (mean over rows
    of the summed weight on the target's tokens)."""
    rows, cols = word_positions(tokens, source), word_positions(tokens, target)
    return torch.stack([layer[:, rows][:, :, cols].sum(-1).mean(-1) for layer in attentions])


def find_heads(attentions: torch.Tensor, tokens: Tokens, source: str, target: str, top: int = 5) -> list[HeadMatch]:
    """Heads in which the tokens of word ``source`` attend most to the tokens of word ``target``.

    Example: ``find_heads(tr.attentions, tr.tokens, "it", "animal")`` hunts for a head that links
    a pronoun to its noun.
    """
    weight = link_weights(attentions, tokens, source, target)
    order = weight.flatten().argsort(descending=True)[:top]
    heads = weight.shape[1]
    return [HeadMatch(int(i) // heads, int(i) % heads, float(weight.flatten()[i])) for i in order]


def link_shift(m, template: str, source: str, target: str, endings: tuple[str, str], head: tuple[int, int]) -> dict:
    """Does a head's ``source`` → ``target`` weight follow the word that decides the link? One table row.

    ``template`` has one ``{}`` for the deciding word; both ``endings`` are traced. The row gives
    ``head``'s weight with each ending and the head (of all) whose weight moves most between them.

    Example:
        >>> import llminspect as li
        >>> row = link_shift(li.load("encoder"), "The trophy didn't fit in the suitcase because it was too {}",
        ...                  "it", "trophy", ("big", "small"), head=(3, 1))
        >>> row["endings"], row["head 3.1"]
        ('big / small', '0.58 → 0.60')
    """
    layer, chosen = check_layer(m, head[0]), check_head(m, head[1])
    first, second = (m.trace(template.format(ending)) for ending in endings)
    weights = [link_weights(t.attentions, t.tokens, source, target) for t in (first, second)]
    moved = (weights[0] - weights[1]).abs().flatten().argmax()
    most = divmod(int(moved), weights[0].shape[1])

    def shift(at: tuple[int, int]) -> str:
        return f"{float(weights[0][at]):.2f} → {float(weights[1][at]):.2f}"

    return {
        "sentence": template.format("…"),
        "endings": " / ".join(endings),
        f"head {layer}.{chosen}": shift((layer, chosen)),
        "most moved": f"{most[0]}.{most[1]}: {shift(most)}",
    }


def head_mean(attentions: torch.Tensor, heads: list[tuple[int, int]] | None = None) -> torch.Tensor:
    """The mean of some heads' maps: ``attentions`` is [layers, heads, rows, cols], ``heads`` (layer, head) pairs.

    Every head of every layer when ``heads`` is None. A labelled summary, never a head of its own.

    Example:
        >>> maps = torch.stack([torch.eye(2), torch.ones(2, 2) / 2])[None]  # 1 layer, 2 heads
        >>> head_mean(maps).tolist()
        [[0.75, 0.25], [0.25, 0.75]]
    """
    pairs = heads or [(layer, head) for layer in range(attentions.shape[0]) for head in range(attentions.shape[1])]
    return torch.stack([attentions[layer, head] for layer, head in pairs]).mean(0)


def last_layer_heads(attentions: torch.Tensor) -> list[tuple[int, int]]:
    """(layer, head) pairs of every head of the last layer."""
    return [(attentions.shape[0] - 1, head) for head in range(attentions.shape[1])]


@dataclass(frozen=True)
class WordTimes:
    """Where in the audio each written token's cross-attention peaks."""

    tokens: list[str]
    seconds: list[float]
    positions: list[int]  # encoder positions (audio frames) of the peaks


def audio_alignment(trace, heads: list[tuple[int, int]] | None = None) -> WordTimes:
    """Align each written (non-special) token to a time in the audio, from cross-attention.

    Averages the cross-attention of ``heads`` (layer, head) pairs — Whisper ships a list of
    *alignment heads* known to track time — and takes each token's peak among the positions
    that hold real audio (the padding after the clip is left out).
    """
    if trace.family != "encoder-decoder" or trace.audio_positions is None:
        raise FamilyError("audio_alignment needs a trace of a speech encoder-decoder such as Whisper.")
    mean = head_mean(trace.cross_attentions, heads)[:, : trace.audio_positions]
    rows = [i for i, special in enumerate(trace.tokens.special) if not special]
    peaks = mean[rows].argmax(-1).tolist()
    return WordTimes(
        tokens=[trace.tokens.labels[i] for i in rows],
        seconds=[peak * trace.seconds_per_position for peak in peaks],
        positions=peaks,
    )
