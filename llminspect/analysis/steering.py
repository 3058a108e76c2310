"""Steering by activation addition (Turner et al. 2023, "ActAdd"): add a direction to the stream, measure the change.

The steering vector is the difference of the residual streams of two short prompts (" Love" minus
" Hate") entering one block. Added — times a coefficient — to the stream entering that block on
another prompt, at the same front positions, it can push what the model writes toward one side.
Measured, not just shown: over many prompts, the change of a *metric* — the mean log-probability
of a set of positive next words minus that of a set of negative words — per layer and coefficient,
beside adding **random vectors of the same norm** (the control: does *any* push of that size move
the metric?).

A detail that matters on this model: its first token becomes an attention sink with a huge
stream (lesson 06). So every prompt here starts with the tokenizer's begin-of-text token (as
ActAdd's GPT-2 prompts start with ``<|endoftext|>``): the sink is the same token everywhere, the
two prompts differ from position 1 on, and the vector is added from position 1.

Example (the control: a random direction with the steering vector's norm at each position):
    >>> import torch
    >>> vector = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    >>> [round(n, 4) for n in same_norm_noise(vector, seed=0).norm(dim=-1).tolist()]
    [5.0, 1.0]
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import list_of_texts, whole_number
from llminspect.analysis.sites import check_layer, run
from llminspect.analysis.threads import one_thread
from llminspect.analysis.tokens import single_token
from llminspect.errors import InputError

ROWS_PER_PASS = 256  # prompts x settings in one batched forward pass
# The lesson's measurement: short prompts that a next word of either feeling can follow, and two word lists.
PROMPTS = ["I think you are", "My day was", "The movie was", "This food is", "Today I feel", "The weather is",
           "Our neighbours are", "His new song is", "The city looks", "Working here is", "That idea was",
           "My family is", "The party was", "Her voice sounds", "The hotel was", "This game is"]  # fmt: skip
POSITIVE = [" good", " great", " happy", " wonderful", " love", " beautiful", " amazing", " nice"]
NEGATIVE = [" bad", " terrible", " sad", " awful", " hate", " horrible", " angry", " ugly"]


def start_token(m) -> int:
    """The token every steered prompt starts with: the tokenizer's begin-of-text token (else end-of-text)."""
    token = m.tokenizer.bos_token_id if m.tokenizer.bos_token_id is not None else m.tokenizer.eos_token_id
    if token is None:
        raise InputError(f"{m.name}'s tokenizer has no begin- or end-of-text token to start every prompt with.")
    return int(token)


def prompt_ids(m, text: str) -> list[int]:
    """``text``'s tokens after the start token (once, even when the tokenizer adds it itself)."""
    ids = m.inputs(text).tokens.ids
    first = start_token(m)
    return ids if ids[0] == first else [first, *ids]


def steering_vector(m, positive: str, negative: str, layer: int) -> torch.Tensor:
    """The stream entering block ``layer`` on ``positive`` minus that on ``negative``, after the start token:
    [tokens, hidden]. The shorter prompt is padded at its end with space tokens, as ActAdd does."""
    layer = check_layer(m, layer)
    a, b = prompt_ids(m, positive), prompt_ids(m, negative)
    if len(a) != len(b):
        space = m.tokenizer(" ", add_special_tokens=False).input_ids
        if len(space) != 1:
            raise InputError(f"{positive!r} and {negative!r} have different lengths, and this tokenizer has no space "
                             "token to pad the shorter with: give two prompts of the same number of tokens.")
        a, b = (ids + space * (max(len(a), len(b)) - len(ids)) for ids in (a, b))
    site = f"layer.{layer}.input"
    streams = run(m, {"input_ids": torch.tensor([a, b], device=m.device)}, keep=[site])[site]
    return (streams[0, 1:] - streams[1, 1:]).float()


def same_norm_noise(vector: torch.Tensor, seed: int) -> torch.Tensor:
    """A random direction per position with the norm of ``vector`` at that position (seeded)."""
    noise = torch.randn(vector.shape, generator=torch.Generator().manual_seed(seed))
    return noise / noise.norm(dim=-1, keepdim=True) * vector.norm(dim=-1, keepdim=True).cpu()


def padded(m, prompts: list[str]) -> tuple[dict, torch.Tensor]:
    """The prompts right-padded into one batch (with their attention mask) and each one's last position."""
    ids = [prompt_ids(m, prompt) for prompt in prompts]
    width = max(len(i) for i in ids)
    pad = m.tokenizer.pad_token_id if m.tokenizer.pad_token_id is not None else start_token(m)
    tensors = {"input_ids": torch.tensor([i + [pad] * (width - len(i)) for i in ids], device=m.device),
               "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids], device=m.device)}
    return tensors, torch.tensor([len(i) - 1 for i in ids])


def adding(vectors: list[torch.Tensor | None]):
    """An edit for a block's input: row r gets ``vectors[r]`` [tokens, hidden] added from position 1 (None: nothing;
    the prompt pass only: a generation step that reads one new token is left alone)."""

    def edit(stream: torch.Tensor) -> torch.Tensor | None:
        if stream.shape[1] == 1:
            return None
        for row, vector in enumerate(vectors):
            if vector is None:
                continue
            width = min(vector.shape[0], stream.shape[1] - 1)
            stream[row, 1 : 1 + width] += vector[:width].to(stream.dtype).to(stream.device)
        return stream

    return edit


@dataclass(frozen=True)
class Steering:
    """The change of a metric over prompts when a steering vector (or a random one of its norm) is added."""

    prompts: list[str]
    positive: str  # the prompts whose stream difference is the vector
    negative: str
    words: tuple[list[str], list[str]]  # the metric: mean log p(first list) - mean log p(second list), next token
    layers: list[int]
    coefficients: list[float]
    baseline: torch.Tensor  # [prompts]: the metric, nothing added
    per_prompt: torch.Tensor  # [layers, coefficients, prompts]: the metric's change, the steering vector added
    random_per_prompt: torch.Tensor  # [layers, coefficients, controls, prompts]: ... random vectors added
    norms: torch.Tensor  # [layers]: the steering vector's norm at each layer

    @property
    def shift(self) -> torch.Tensor:
        """[layers, coefficients]: the mean change over prompts with the steering vector."""
        return self.per_prompt.mean(-1)

    @property
    def random_shift(self) -> torch.Tensor:
        """[layers, coefficients, controls]: the mean change with each random vector."""
        return self.random_per_prompt.mean(-1)

    def moved(self, layer: int, coefficient: float) -> float:
        """The share of prompts whose metric rose with the steering vector at ``layer`` and ``coefficient``."""
        cell = self.per_prompt[self.layers.index(layer), self.coefficients.index(coefficient)]
        return float((cell > 0).double().mean())


def metric_after(m, tensors: dict, last: torch.Tensor, words: tuple[list[int], list[int]], edit=None) -> torch.Tensor:
    """Mean log p of the first words minus the second, next after each row's ``last`` position: [rows].

    Only those positions go through the LM head (``logits_to_keep`` per row, where the model takes it).
    """
    forward = {}
    if "logits_to_keep" in inspect.signature(m.model.forward).parameters:
        forward["logits_to_keep"] = last[:, None].to(m.device)
    logits = run(m, tensors, edit=edit, **forward).logits
    picked = logits[:, 0] if forward else logits[torch.arange(len(last)), last.to(logits.device)]
    logp = picked.double().log_softmax(-1).cpu()
    return logp[:, words[0]].mean(-1) - logp[:, words[1]].mean(-1)


def steering(m, prompts: list[str], positive: str, negative: str, words: tuple[list[str], list[str]],
             layers: list[int], coefficients: list[float], controls: int = 2, seed: int = 0) -> Steering:  # fmt: skip
    """ActAdd over ``prompts``: the metric's change for each layer and coefficient, and with ``controls`` random
    vectors of the steering vector's norm at each (a batch row per prompt and setting)."""
    m.require_decoder("Steering")
    prompts = list_of_texts(prompts, "prompts")
    controls = whole_number(controls, "controls", minimum=0)
    ids = tuple([single_token(m.tokenizer, w, "word") for w in list_of_texts(side, "words")] for side in words)
    tensors, last = padded(m, prompts)
    baseline = metric_after(m, tensors, last, ids)
    layers = [check_layer(m, layer) for layer in layers]
    vectors = {layer: steering_vector(m, positive, negative, layer) for layer in layers}
    settings = [(layer, c, draw) for layer in layers for c in coefficients for draw in range(controls + 1)]
    added = [c * (vectors[layer] if draw == 0 else same_norm_noise(vectors[layer], seed * 1000 + layer * 10 + draw))
             for layer, c, draw in settings]  # fmt: skip
    changes = torch.zeros(len(settings), len(prompts), dtype=torch.float64)
    per_pass = max(1, ROWS_PER_PASS // len(prompts))
    for start in range(0, len(settings), per_pass):
        chunk = range(start, min(start + per_pass, len(settings)))
        rows = {layer: [added[i] if settings[i][0] == layer else None for i in chunk for _ in prompts]
                for layer in layers}  # fmt: skip
        batch = {name: value.repeat(len(chunk), 1) for name, value in tensors.items()}
        edits = {f"layer.{layer}.input": adding(v) for layer, v in rows.items()}
        moved = metric_after(m, batch, last.repeat(len(chunk)), ids, edits) - baseline.repeat(len(chunk))
        changes[start : start + len(chunk)] = moved.view(len(chunk), len(prompts))
    shaped = changes.view(len(layers), len(coefficients), controls + 1, len(prompts))
    norms = torch.stack([vectors[layer].norm() for layer in layers]).cpu()
    return Steering(prompts, positive, negative, (list(words[0]), list(words[1])), layers, list(coefficients),
                    baseline, shaped[:, :, 0], shaped[:, :, 1:], norms)  # fmt: skip


@dataclass(frozen=True)
class SteeredText:
    """What the model writes after a prompt: as it is, steered, and with a random vector of the same norm."""

    prompt: str
    layer: int
    coefficient: float
    plain: str
    steered: str
    random: str


def steered_text(m, prompt: str, positive: str, negative: str, layer: int, coefficient: float, tokens: int = 20,
                 seed: int = 0) -> SteeredText:  # fmt: skip
    """Greedy continuations of ``prompt`` (``tokens`` new tokens), plain, steered at ``layer`` and with a random
    vector of the same norm: three batch rows; the vector is added on the prompt's front positions only."""
    m.require_decoder("Steering")
    tokens = whole_number(tokens, "tokens")
    vector = steering_vector(m, positive, negative, layer)
    edit = {f"layer.{layer}.input": adding([None, coefficient * vector, coefficient * same_norm_noise(vector, seed)])}
    start = prompt_ids(m, prompt)
    ids = torch.tensor([start] * 3, device=m.device)
    step, cache = ids, None
    with one_thread():  # three rows of one token a pass: tiny operations (analysis.threads)
        for _ in range(tokens):  # the key/value cache: the prompt once (steered there), then one token a pass
            out = run(m, {"input_ids": step}, edit=edit, use_cache=True, cache=cache).output
            cache, step = out.cache, out.logits[:, -1:].argmax(-1)
            ids = torch.cat([ids, step], 1)
    written = [m.tokenizer.decode(row[len(start) :], skip_special_tokens=True) for row in ids.tolist()]
    return SteeredText(prompt, layer, float(coefficient), *written)
