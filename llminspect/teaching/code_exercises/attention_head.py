"""Lesson 03: one causal attention head from its q, k and v, checked against the decoder's own head.

The cases are heads of the embedded decoder as it ran: q and k as its scores used them (after
RoPE), v of the key/value head the query head shares, and the model's attention map and head
output to match — on the lesson's sentence, on a 300-token text, and on scores too large for a
plain ``exp`` (the reason softmax subtracts each row's largest score first).

Example:
    >>> import torch
    >>> weights, output = attention_head(torch.eye(2), torch.eye(2), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    >>> weights[0].tolist()
    [1.0, 0.0]
"""

from __future__ import annotations

import torch

from llminspect.teaching import course_models
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

SENTENCE = "The animal didn't cross the street because it was too tired"
LONG = " ".join(["The quick brown fox jumps over the lazy dog, and the dog sleeps on in the warm sun."] * 15)


def attention_head(q, k, v):
    """One causal attention head: q, k, v are [tokens, d]; returns (weights [tokens, tokens], output [tokens, d])."""
    d = q.shape[-1]
    scores = q @ k.T / d**0.5
    future = torch.ones(scores.shape, dtype=torch.bool).triu(1)  # key j after query i: not yet written
    scores = scores.masked_fill(future, float("-inf"))
    scores = scores - scores.max(dim=-1, keepdim=True).values  # exp of a large score overflows; the shift cancels
    weights = scores.exp()
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, weights @ v


def _head(text: str, layer: int, head: int, label: str) -> Case:
    """q, k, v of one head of the decoder on ``text``, and its attention map and output as the model computed them."""
    m = course_models.embedded("decoder")
    q, k, heads, stream = (f"layer.{layer}.{part}" for part in ("attention.q", "attention.k", "attention.heads",
                                                                    "input"))  # fmt: skip
    cache = m.run(text, keep=[q, k, heads, stream], output_attentions=True)
    stack = m.sites().architecture.writer
    block = stack.blocks[layer]
    with torch.no_grad():  # v is no site: the block's own norm and v projection on the stream it read
        values = block.self_attn.v_proj(block.input_layernorm(cache[stream][0])).unflatten(-1, (-1, stack.head_dim))
    v = values[:, head // (stack.heads // stack.kv_heads)]  # the key/value head this query head shares
    return Case(label, (cache[q][0, head], cache[k][0, head], v),
                (cache.output.attentions[layer][0, head], cache[heads][0, :, head]))


def cases() -> list[Case]:
    lesson = _head(SENTENCE, 13, 8, "head 13.8 on the lesson's sentence")
    q, k, v = lesson.args
    return [lesson, _head(LONG, 2, 0, "head 2.0 on a 300-token text"),
            Case("scores too large for a plain exp (q × 100)", (q * 100, k, v))]  # fmt: skip


def _causal(scores: torch.Tensor, diagonal: int = 1) -> torch.Tensor:
    return scores.masked_fill(torch.ones(scores.shape, dtype=torch.bool).triu(diagonal), float("-inf"))


def _no_scale(q, k, v):
    weights = _causal(q @ k.T).softmax(-1)
    return weights, weights @ v


def _by_d(q, k, v):
    weights = _causal(q @ k.T / q.shape[-1]).softmax(-1)
    return weights, weights @ v


def _columns(q, k, v):
    weights = _causal(q @ k.T / q.shape[-1] ** 0.5).softmax(0)
    return weights, weights @ v


def _unmasked(q, k, v):
    weights = (q @ k.T / q.shape[-1] ** 0.5).softmax(-1)
    return weights, weights @ v


def _diagonal(q, k, v):
    weights = _causal(q @ k.T / q.shape[-1] ** 0.5, diagonal=0).softmax(-1)
    return weights, weights @ v


def _no_shift(q, k, v):
    weights = _causal(q @ k.T / q.shape[-1] ** 0.5).exp()
    weights = weights / weights.sum(-1, keepdim=True)
    return weights, weights @ v


def _zero_mask(q, k, v):
    scores = q @ k.T / q.shape[-1] ** 0.5
    weights = scores.masked_fill(torch.ones(scores.shape, dtype=torch.bool).triu(1), 0.0).softmax(-1)
    return weights, weights @ v


def _mask_after(q, k, v):
    weights = (q @ k.T / q.shape[-1] ** 0.5).softmax(-1).tril()
    return weights, weights @ v


def _transposed(q, k, v):
    weights = _causal(q @ k.T / q.shape[-1] ** 0.5).softmax(-1)
    return weights, weights.T @ v


EXERCISE = CodeExercise(
    "Write one causal attention head: scores q·kᵀ/√d, a causal mask, a softmax over each row, then · v. "
    "It is checked against the decoder's own attention map and head output.",
    "attention_head(q, k, v) -> (weights, output)", attention_head, cases,
    [Mistake("forgetting ÷√d", "the scores grow with the head size d; what keeps the softmax from becoming "
             "nearly one-hot?", _no_scale),
     Mistake("dividing by d instead of √d", "the scale is the square root of the head size.", _by_d),
     Mistake("a softmax over the wrong axis", "each *row* (one query) must sum to 1: which dim is that?", _columns),
     Mistake("forgetting the causal mask", "a decoder token may not look at tokens after it: what must row 0 be?",
             _unmasked),
     Mistake("masking the diagonal too", "a token may look at itself: the mask starts one above the diagonal.",
             _diagonal),
     Mistake("forgetting to subtract each row's largest score before exp (overflow)", "exp(1000) is inf in "
             "float32; subtracting the row's largest score changes nothing after dividing by the sum.", _no_shift),
     Mistake("masking with 0 instead of -inf", "a score of 0 still gets weight exp(0) = 1: masked scores must "
             "become -inf.", _zero_mask),
     Mistake("masking after the softmax", "zeroing weights after the softmax leaves rows that no longer sum to 1; "
             "mask the scores before.", _mask_after),
     Mistake("multiplying v by the transposed weights", "output row i mixes the values with row i of the weights.",
             _transposed)],
    "scale by √d so the scores' spread does not grow with the head size; −inf above the diagonal so a token "
    "sees only itself and the past; subtract each row's largest score so exp cannot overflow (softmax does it "
    "for you); the weights of each row sum to 1 and mix the value vectors.",
    tolerance=1e-4, parts=("the weights", "the output"),
    hint="print your weights[:3, :3] and check each row sums to 1 and row 0 sees only token 0.",
)  # fmt: skip
