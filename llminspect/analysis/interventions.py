"""Interventions: switch attention heads off, patch activations, and watch the output move.

An attention picture or an attribution is a hypothesis about what a model uses. An intervention
tests it: change one thing inside the model, run it again, compare.

- ``heads_off(m, heads)``: inside the ``with`` block, each chosen head's output is zero (*zero
  ablation*) or its mean over the positions of a text you choose (*mean ablation*,
  ``means=head_means(m, inputs)``; ``m.heads_off(heads, how="mean", reference=text)``).
  A head's output is its slice of what the attention's output projection reads (``o_proj`` in a
  Llama, ``out_proj`` in BART, ``attention.output.dense`` in BERT): heads are joined there, each
  ``head_dim`` numbers wide, so the slice is exactly that head's ``weights · v``.
- ``ablation``: a decoder's probability of an answer, and its top tokens, with and without heads.
- ``head_effects``: every head switched off alone: how much log p(answer) moves.
  Both average a mean-ablated head over the prompt's own positions: they take no other text.
- ``patching``: *activation patching*. Run the corrupted prompt, but after block ``l`` put back the
  clean prompt's residual stream at one position: where p(answer) comes back, that position at
  that depth carries what the corruption removed.

Everything runs through forward hooks on the model's own modules; the tests compare each with the
same edit written as plain torch (weights edited, blocks re-run by hand).

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> result = ablation(m, m.inputs("The capital of France is"), " Paris", [(0, 0)])
    >>> 0 < result.p_after < 1
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import head_pairs
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.next_token import NextTokens, last_probabilities, top_tokens
from llminspect.analysis.sites import check_head, check_layer, hooked, run, sites_of
from llminspect.analysis.tokens import single_token, token_labels
from llminspect.errors import InputError


def heads_site(m, layer: int, stack: str | None = None) -> str:
    """The site holding each head's output in ``layer`` of ``stack`` ("encoder"/"decoder"; None: the writer)."""
    prefix = f"{sites_of(m).architecture.stack(stack).name}."
    name = f"{prefix.lstrip('.')}layer.{layer}.attention.heads"
    sites_of(m).match(name)  # refuses a model whose heads have no single output projection
    return name


def _chosen(m, heads: Iterable[tuple[int, int]], stack: str | None) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for layer, head in head_pairs(heads):
        by_layer.setdefault(check_layer(m, layer, stack), []).append(check_head(m, head, stack))
    return by_layer


def head_means(m, inputs: Inputs, stack: str | None = None) -> list[torch.Tensor]:
    """Each layer's heads averaged over ``inputs``'s positions: [layers] x [heads, head_dim]."""
    layers = sites_of(m).architecture.stack(stack).layers
    names = [heads_site(m, layer, stack) for layer in range(layers)]
    cache = run(m, inputs, keep=names)
    return [cache[name][0].mean(0) for name in names]


def switch_off(chosen: list[int], means: torch.Tensor | None):
    """An edit for a heads site: the ``chosen`` heads give zeros or their ``means`` [heads, head_dim]."""

    def edit(heads: torch.Tensor) -> torch.Tensor:
        for head in chosen:
            heads[:, :, head] = 0.0 if means is None else means[head].to(heads.dtype)
        return heads

    return edit


def heads_off(m, heads: Iterable[tuple[int, int]], means: list[torch.Tensor] | None = None, stack: str | None = None):
    """A ``with`` block inside which the chosen (layer, head) pairs give zeros (or their ``means``) instead of
    their output. The heads are checked at once, before the block starts.

    Example:
        >>> import llminspect as li
        >>> m = li.load("decoder")
        >>> with heads_off(m, [(3, 1), (3, 2)]):
        ...     changed = m.next_tokens("The capital of France is", k=1)
    """
    return hooked(m, edit=_switching_off(m, heads, means, stack))


def _switching_off(m, heads, means: list[torch.Tensor] | None, stack: str | None = None) -> dict:
    """The edits (heads site -> function) that switch ``heads`` off."""
    return {heads_site(m, layer, stack): switch_off(chosen, None if means is None else means[layer])
            for layer, chosen in _chosen(m, heads, stack).items()}  # fmt: skip


@dataclass(frozen=True)
class Ablation:
    """A decoder's next-token guesses with some heads switched off."""

    prompt: str
    answer: str
    heads: list[tuple[int, int]]
    how: str  # "zero" or "mean"
    p_before: float  # p(answer) with every head
    p_after: float  # ... with the chosen heads off
    before: NextTokens
    after: NextTokens


def means_for(m, inputs: Inputs | None, how: str) -> list[torch.Tensor] | None:
    """What switched-off heads give: None (zeros) for ``how="zero"``, for "mean" each head's output averaged
    over the positions of ``inputs`` — the prompt itself for ``ablation`` and ``head_effects``, the text
    ``reference=`` for ``Inspector.heads_off`` (the only caller that can pass None)."""
    if how not in ("zero", "mean"):
        raise InputError(f"how={how!r}: a head is switched off to 'zero' or to its 'mean' over a text.")
    if how == "zero":
        return None
    if inputs is None:
        raise InputError(
            'how="mean" needs a text to average each head over: m.heads_off(heads, how="mean", '
            'reference="some text"). (m.ablation and m.head_effects average over their own prompt.)'
        )
    return head_means(m, inputs)


def ablation(m, inputs: Inputs, answer: str, heads: Iterable[tuple[int, int]], how: str = "zero", k: int = 5):
    """p(``answer``) and the top ``k`` next tokens with all heads, then with ``heads`` switched off: zeroed, or
    (``how="mean"``) each replaced by its mean output over the positions of this same prompt."""
    m.require_decoder("Head ablation")
    heads = head_pairs(heads)
    answer_id = single_token(m.tokenizer, answer)
    means = means_for(m, inputs, how)
    edits = _switching_off(m, heads, means)
    before = last_probabilities(m, inputs)[0]
    after = last_probabilities(m, inputs, edits)[0]
    prompt, label = inputs.tokens.text, token_labels(m.tokenizer, [answer_id])[0]
    return Ablation(prompt, label, heads, how, float(before[answer_id]), float(after[answer_id]),
                    top_tokens(m, prompt, before, k), top_tokens(m, prompt, after, k))  # fmt: skip


ROW_TOKENS_PER_PASS = 4096  # rows x tokens of one batched pass: a short prompt sweeps every layer at once


def _layer_sweep(m, inputs: Inputs, answer_id: int, sites: list[str], edit_for, rows: int) -> torch.Tensor:
    """p(answer) [layers, rows] with ``rows`` edits at each layer's site, each in a batch row of its own.

    ``edit_for(layer, first)`` edits the rows ``first .. first + rows - 1`` at ``sites[layer]``. Rows of
    other layers pass that site untouched, so several layers share one forward pass (as many as fit
    ``ROW_TOKENS_PER_PASS``): 30 passes become one on a 5-token prompt.
    """
    layers = len(sites)
    per_pass = max(1, ROW_TOKENS_PER_PASS // (rows * len(inputs.tokens.ids)))
    found = torch.zeros(layers, rows, dtype=torch.float64)
    for start in range(0, layers, per_pass):
        chunk = list(range(start, min(start + per_pass, layers)))
        edits = {sites[layer]: edit_for(layer, index * rows) for index, layer in enumerate(chunk)}
        probabilities = last_probabilities(m, inputs, edits, rows=len(chunk) * rows)[:, answer_id]
        found[chunk] = probabilities.view(len(chunk), rows)
    return found


@dataclass(frozen=True)
class HeadEffects:
    """log p(answer) with each head switched off alone, minus log p(answer) with every head."""

    prompt: str
    answer: str
    how: str
    p_answer: float  # with every head
    change: torch.Tensor  # [layers, heads]: negative = the answer got less likely without that head

    def strongest(self, top: int = 5) -> list[tuple[int, int, float]]:
        """The ``top`` heads whose removal lowers the answer most: (layer, head, change)."""
        order = self.change.flatten().argsort()[:top]
        heads = self.change.shape[1]
        return [(int(i) // heads, int(i) % heads, float(self.change.flatten()[i])) for i in order]


def head_effects(m, inputs: Inputs, answer: str, how: str = "zero") -> HeadEffects:
    """Switch every head off alone and record the change of log p(``answer``): one row of a batch each.

    ``how="mean"`` gives a head its mean output over the positions of this same prompt (no other text).
    """
    m.require_decoder("Head ablation")
    stack = sites_of(m).architecture.writer
    names = [heads_site(m, layer) for layer in range(stack.layers)]
    answer_id = single_token(m.tokenizer, answer)
    means = means_for(m, inputs, how)
    p_answer = float(last_probabilities(m, inputs)[0, answer_id])

    def each_row_one_head(layer: int, first: int):  # row first + h of this layer's rows loses head h
        mean = None if means is None else means[layer]

        def edit(heads: torch.Tensor) -> torch.Tensor:
            for head in range(stack.heads):
                heads[first + head, :, head] = 0.0 if mean is None else mean[head].to(heads.dtype)
            return heads

        return edit

    p_off = _layer_sweep(m, inputs, answer_id, names, each_row_one_head, stack.heads)
    change = p_off.log() - math.log(p_answer)
    return HeadEffects(inputs.tokens.text, token_labels(m.tokenizer, [answer_id])[0], how, p_answer, change)


@dataclass(frozen=True)
class Patching:
    """p(answer) of the corrupted prompt with the clean stream put back after block ``layer`` at one position."""

    clean: list[str]  # the clean prompt's tokens
    corrupt: list[str]
    answer: str
    p_clean: float
    p_corrupt: float
    p_patched: torch.Tensor  # [layers, positions]

    @property
    def restored(self) -> torch.Tensor:
        """How much of the gap each patch closes: 0 = still corrupt, 1 = back to clean."""
        return (self.p_patched - self.p_corrupt) / (self.p_clean - self.p_corrupt)

    def blocks_restoring(self, position: int, share: float = 0.9) -> list[int]:
        """Blocks after which the clean vector put back at ``position`` restores at least ``share`` of the gap."""
        return [int(b) for b in (self.restored[:, position] >= share).nonzero().flatten()]


def patching(m, clean: Inputs, corrupt: Inputs, answer: str) -> Patching:
    """Activation patching of every (layer, position) on the corrupted prompt: one row of a batch each."""
    m.require_decoder("Activation patching")
    if len(clean.tokens.ids) != len(corrupt.tokens.ids):
        raise InputError(
            f"Activation patching puts the clean stream back position by position, so both prompts need the same "
            f"number of tokens: {len(clean.tokens.ids)} ({clean.tokens.text!r}) vs {len(corrupt.tokens.ids)} "
            f"({corrupt.tokens.text!r}). Change one word for another word of one token."
        )
    answer_id = single_token(m.tokenizer, answer)
    layers = sites_of(m).architecture.writer.layers
    names = [f"layer.{layer}.output" for layer in range(layers)]
    cache = run(m, clean, keep=[*names, "logits"], last_only=True)
    p_clean = float(cache.logits[0, -1].double().softmax(-1)[answer_id])
    p_corrupt = float(last_probabilities(m, corrupt)[0, answer_id])
    positions = len(corrupt.tokens.ids)

    def each_row_one_position(layer: int, first: int):  # row first + p of this layer's rows: position p put back
        clean_stream = cache[names[layer]][0]

        def edit(hidden: torch.Tensor) -> torch.Tensor:
            for position in range(positions):
                hidden[first + position, position] = clean_stream[position]
            return hidden

        return edit

    patched = _layer_sweep(m, corrupt, answer_id, names, each_row_one_position, positions)
    labels = token_labels(m.tokenizer, [answer_id])[0]
    return Patching(clean.tokens.labels, corrupt.tokens.labels, labels, p_clean, p_corrupt, patched)
