"""Induction heads: a model that copies what followed the last time, found and then switched off.

A text of random tokens is unpredictable, so a model's loss on it is high — until the text repeats.
On the second copy a model with *induction heads* (Olsson et al. 2022, "In-context learning and
induction heads") predicts each token from the token that followed the same token in the first
copy: the head at a query ``t`` looks at key ``t - period + 1`` (the token *after* the earlier
occurrence of the current token) and copies it. They need a *previous-token head* earlier in the
model, which writes into each position which token came before (so the induction head's key can
find "the position whose previous token is my token").

- ``induction_scores(attentions, period)``: each head's mean weight on the token after the earlier
  copy, over the second copy's queries — the reference a learner's own function is checked against.
- ``previous_token_scores(attentions)``: each head's mean weight on the token just before.
- ``induction(m, length, seed)``: one forward pass over ``length`` random tokens repeated twice: the
  loss per token, both scores for every head, and each head's mean output (what mean ablation puts
  back). ``induction_ablation`` switches the top heads off — zeroed and at their mean — beside as
  many random heads (the control), all in one batched pass.

Example:
    >>> import torch
    >>> pattern = torch.zeros(6, 6)
    >>> pattern[3:, :] = torch.eye(6)[[1, 2, 3]]  # queries 3, 4, 5 look at keys 1, 2, 3
    >>> float(induction_scores(pattern, period=3))
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.interventions import heads_site
from llminspect.analysis.sites import run, sites_of
from llminspect.analysis.tokens import from_ids, special_token_ids, token_labels
from llminspect.errors import InputError

MAX_LENGTH = 200  # tokens per copy: attention maps of 2 x 200 tokens for every head stay a few hundred MB


def induction_scores(attentions: torch.Tensor, period: int) -> torch.Tensor:
    """Mean weight each query ``t >= period`` puts on key ``t - period + 1``: [..., tokens, tokens] -> [...].

    ``attentions`` is one head's map [tokens, tokens] or a stack ([layers, heads, tokens, tokens]);
    the key is the token *after* the earlier occurrence of the query's token, which an induction head
    copies. Only the repeated part counts: the first copy has no earlier occurrence to look at.

    Example:
        >>> import torch
        >>> induction_scores(torch.full((2, 4, 4), 0.25), period=2).tolist()
        [0.25, 0.25]
    """
    tokens = attentions.shape[-1]
    period = whole_number(period, "period")
    if not period < tokens:
        raise InputError(f"period={period}: the map has {tokens} tokens; a repeat needs period < tokens.")
    queries = torch.arange(period, tokens)
    return attentions[..., queries, queries - period + 1].float().mean(-1)


def previous_token_scores(attentions: torch.Tensor) -> torch.Tensor:
    """Mean weight each query ``t >= 1`` puts on key ``t - 1``: [..., tokens, tokens] -> [...].

    Example:
        >>> import torch
        >>> pattern = torch.zeros(4, 4)
        >>> pattern[[1, 2, 3], [0, 1, 2]] = 1.0  # each token looks at the one before it
        >>> float(previous_token_scores(pattern))
        1.0
    """
    queries = torch.arange(1, attentions.shape[-1])
    return attentions[..., queries, queries - 1].float().mean(-1)


def random_repeat(m, length: int, seed: int) -> list[int]:
    """``length`` random ordinary tokens (special ones left out), then the same tokens again."""
    length = whole_number(length, "length", maximum=MAX_LENGTH)
    if m.max_tokens is not None and 2 * length > m.max_tokens:
        raise InputError(f"length={length}: twice that is more than the {m.max_tokens} tokens {m.name} reads.")
    special = special_token_ids(m.tokenizer)
    generator = torch.Generator().manual_seed(whole_number(seed, "seed", minimum=0))
    drawn: list[int] = []
    while len(drawn) < length:
        token = int(torch.randint(len(m.tokenizer), (1,), generator=generator))
        if token not in special and token < m.model.get_input_embeddings().num_embeddings:
            drawn.append(token)
    return drawn + drawn


@dataclass(frozen=True)
class Induction:
    """Random tokens repeated twice: how surprised the model is at each token, and what every head attends to."""

    tokens: list[str]  # labels of the 2 x period tokens
    ids: list[int]
    period: int  # tokens per copy
    seed: int
    losses: torch.Tensor  # [tokens]: -log p(token t | tokens before t); token 0 has none (nan)
    attentions: torch.Tensor  # [layers, heads, tokens, tokens]
    induction: torch.Tensor  # [layers, heads]: induction_scores(attentions, period)
    previous_token: torch.Tensor  # [layers, heads]: previous_token_scores(attentions)
    head_means: torch.Tensor  # [layers, heads, head_dim]: each head's output averaged over the positions

    def loss(self, copy: str) -> float:
        """Mean loss of the "first" copy (tokens 1 .. period - 1) or the "second" (period + 1 .. end).

        Token ``period`` (the second copy's first token) belongs to neither: nothing announces it.
        """
        return float(self.losses[copy_positions(self.period, copy)].mean())

    def top_heads(self, n: int = 5, score: str = "induction") -> list[tuple[int, int]]:
        """The ``n`` heads with the highest ``score`` ("induction" or "previous_token"): (layer, head)."""
        values = self.induction if score == "induction" else self.previous_token
        heads = values.shape[1]
        return [(int(i) // heads, int(i) % heads) for i in values.flatten().argsort(descending=True)[:n]]


def copy_positions(period: int, copy: str) -> slice:
    """The token positions whose loss counts for one copy (see ``Induction.loss``)."""
    if copy not in ("first", "second"):
        raise InputError(f"copy={copy!r}: the text has a 'first' and a 'second' copy.")
    return slice(1, period) if copy == "first" else slice(period + 1, 2 * period)


def token_losses(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log p of each token given the ones before: logits [rows, tokens, vocab] -> [rows, tokens] (nan first)."""
    logp = logits[:, :-1].double().log_softmax(-1)
    picked = -logp.gather(-1, ids[:, 1:, None].to(logp.device))[..., 0]
    return torch.cat([torch.full_like(picked[:, :1], float("nan")), picked], 1).cpu()


def induction(m, length: int = 40, seed: int = 0) -> Induction:
    """One forward pass over ``length`` random tokens repeated twice, attention maps and head outputs kept."""
    m.require_decoder("Finding induction heads")
    ids = random_repeat(m, length, seed)
    inputs = Inputs(from_ids(m.tokenizer, ids), {"input_ids": torch.tensor([ids], device=m.device)})
    layers = sites_of(m).architecture.writer.layers
    names = [heads_site(m, layer) for layer in range(layers)]
    cache = run(m, inputs, keep=names, output_attentions=True)
    attentions = torch.stack([a[0] for a in cache.output.attentions]).detach().float().cpu()
    means = torch.stack([cache[name][0].mean(0) for name in names]).float().cpu()
    losses = token_losses(cache.logits, torch.tensor([ids]))[0]
    period = len(ids) // 2
    return Induction(token_labels(m.tokenizer, ids), ids, period, seed, losses, attentions,
                     induction_scores(attentions, period), previous_token_scores(attentions), means)  # fmt: skip


@dataclass(frozen=True)
class SwitchedOff:
    """One set of heads switched off on the repeated tokens: the loss per token, zeroed and at their means."""

    label: str  # "top 5 induction heads", "random heads 1", ...
    heads: list[tuple[int, int]]
    zero: torch.Tensor  # [tokens]: loss per token with the heads zeroed
    mean: torch.Tensor  # [tokens]: ... with each head giving its mean output over the sequence


@dataclass(frozen=True)
class InductionAblation:
    """The second copy's loss with every head, and with sets of heads switched off (top heads and controls)."""

    period: int
    losses: torch.Tensor  # [tokens]: every head on
    sets: list[SwitchedOff]

    def second_copy(self, label: str | None = None, how: str = "zero") -> float:
        """Mean loss on the second copy: with every head (``label`` None), or with set ``label`` off."""
        if label is None:
            return float(self.losses[copy_positions(self.period, "second")].mean())
        chosen = next((s for s in self.sets if s.label == label), None)
        if chosen is None:
            raise InputError(f"No set {label!r}; the sets are: {', '.join(s.label for s in self.sets)}.")
        values = chosen.zero if how == "zero" else chosen.mean
        return float(values[copy_positions(self.period, "second")].mean())


def random_heads(layers: int, heads: int, n: int, leave_out: list[tuple[int, int]], seed: int) -> list:
    """``n`` heads drawn at random (seeded) among all heads but ``leave_out``."""
    pool = [(layer, head) for layer in range(layers) for head in range(heads) if (layer, head) not in leave_out]
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]
    return sorted(pool[int(i)] for i in order)


def induction_ablation(m, found: Induction, n: int = 5, controls: int = 3, seed: int = 0) -> InductionAblation:
    """Switch off the ``n`` top induction heads, the ``n`` top previous-token heads and ``controls`` sets of ``n``
    random heads (not top induction heads), each zeroed and at its mean: one batch row per set and method."""
    m.require_decoder("Switching induction heads off")
    n, controls = whole_number(n, "n"), whole_number(controls, "controls", minimum=0)
    stack = sites_of(m).architecture.writer
    top = found.top_heads(n)
    sets = [(f"top {n} induction heads", top), (f"top {n} previous-token heads", found.top_heads(n, "previous_token"))]
    sets += [(f"random heads {i + 1}", random_heads(stack.layers, stack.heads, n, top, seed + i))
             for i in range(controls)]  # fmt: skip
    rows = [(heads, how) for _, heads in sets for how in ("zero", "mean")]

    def edit_for(layer: int):
        def edit(values: torch.Tensor) -> torch.Tensor:
            for row, (heads, how) in enumerate(rows):
                for head in [h for layer_, h in heads if layer_ == layer]:
                    values[row, :, head] = 0.0 if how == "zero" else found.head_means[layer, head].to(values.dtype)
            return values

        return edit

    ids = torch.tensor([found.ids], device=m.device)
    edits = {heads_site(m, layer): edit_for(layer) for layer in range(stack.layers)}
    logits = run(m, {"input_ids": ids}, edit=edits, rows=len(rows)).logits
    losses = token_losses(logits, ids.expand(len(rows), -1))
    switched = [SwitchedOff(label, heads, losses[2 * i], losses[2 * i + 1]) for i, (label, heads) in enumerate(sets)]
    return InductionAblation(found.period, found.losses, switched)
