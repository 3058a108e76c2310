"""What rotary position embeddings (RoPE) do to queries and keys.

A model with RoPE adds no position vector to its embeddings. Instead, inside every attention
layer, each query and key is cut into pairs of numbers and each pair is turned by an angle
``position x frequency`` — fast-turning pairs for fine position, slow ones for coarse (Su et
al. 2021). Turning q by angle a and k by angle b changes their dot product only through
``a - b``, so attention scores depend on how far apart two tokens are, not where they sit.

Models differ in the details, and each is shown as it is:
- which dimensions pair up: Llama and most others pair dimension i with i + d/2
  (``rotate_half``, layout "half"); GPT-J pairs neighbours 2i and 2i + 1 ("interleaved");
- how much of each head turns: GPT-NeoX, Phi and GPT-J turn only the first part of each head
  (``rotary_dims`` < ``head_dim``); the rest passes through unturned.

Rather than re-deriving q and k for each architecture (fused projections, q/k norms, ...), one
run of two rows reads the queries and keys the scores use (the ``attention.q`` / ``attention.k``
sites): row 0 as the text really is, row 1 entering the same layer with the same stream but
every token at position 0, where RoPE turns nothing — so row 1 holds q and k before the turn
and row 0 after it. The frequencies are read off the turn the model gave position 1.

Example:
    >>> import llminspect as li
    >>> rope = li.load("decoder").rotary("The quick brown fox")
    >>> tuple(rope.angles.shape), round(float(rope.frequencies[0]), 3), rope.layout
    ((4, 32), 1.0, 'half')
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from llminspect.analysis.attention import kv_groups
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import check_head, check_layer, run, sites_of
from llminspect.errors import FamilyError, InputError


@dataclass
class Rotary:
    """One head's queries and keys before and after RoPE turned them (the turned dimensions), with the angles."""

    tokens: list[str]
    layer: int
    head: int
    frequencies: torch.Tensor  # [rotary_dims / 2] radians per position, one per pair
    angles: torch.Tensor  # [tokens, rotary_dims / 2] = position x frequency
    query_before: torch.Tensor  # [tokens, rotary_dims]
    query_after: torch.Tensor
    key_before: torch.Tensor
    key_after: torch.Tensor
    layout: str = "half"  # "half": dim i pairs with i + d/2; "interleaved": 2i with 2i + 1
    head_dim: int | None = None  # the whole head; dimensions past rotary_dims are not turned

    @property
    def rotary_dims(self) -> int:
        return self.query_before.shape[-1]

    @property
    def pairs(self) -> int:
        return self.rotary_dims // 2

    def pair_dims(self, index: int) -> tuple[int, int]:
        """The two dimensions that turn together as pair ``index``."""
        if not 0 <= index < self.pairs:
            raise InputError(f"pair {index}: this head turns {self.pairs} pairs, numbered 0 to {self.pairs - 1}.")
        return (2 * index, 2 * index + 1) if self.layout == "interleaved" else (index, index + self.pairs)

    def pair(self, index: int, which: str = "query") -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``index`` of every token, before and after: two [tokens, 2] tensors."""
        before, after = (self.query_before, self.query_after) if which == "query" else (self.key_before, self.key_after)
        dims = list(self.pair_dims(index))
        return before[:, dims], after[:, dims]

    def scores(self, rotated: bool = True) -> torch.Tensor:
        """Scaled dot products q·k/√d of the turned dimensions, [query token, key token] (no mask, no softmax)."""
        q, k = (self.query_after, self.key_after) if rotated else (self.query_before, self.key_before)
        return q @ k.T / q.shape[-1] ** 0.5


def rotate(vectors: torch.Tensor, angles: torch.Tensor, layout: str = "half") -> torch.Tensor:
    """Textbook RoPE: turn each pair of ``vectors`` [tokens, dims] by ``angles`` [tokens, dims / 2].

    Example:
        >>> turned = rotate(torch.tensor([[1.0, 0.0]]), torch.tensor([[torch.pi / 2]]))  # a quarter turn
        >>> torch.allclose(turned, torch.tensor([[0.0, 1.0]]), atol=1e-6)
        True
    """
    half = vectors.shape[-1] // 2
    if layout == "interleaved":
        x, y = vectors[:, 0::2], vectors[:, 1::2]
    else:
        x, y = vectors[:, :half], vectors[:, half:]
    turned_x, turned_y = x * angles.cos() - y * angles.sin(), x * angles.sin() + y * angles.cos()
    if layout == "interleaved":
        return torch.stack([turned_x, turned_y], dim=-1).flatten(-2)
    return torch.cat([turned_x, turned_y], dim=-1)


def _turned_dims(before: torch.Tensor, after: torch.Tensor) -> int:
    """How many leading dimensions RoPE turned (the rest pass through equal, as in GPT-NeoX and Phi-3)."""
    # Rows computed apart may differ in the last bits of float32 where nothing turned (~1e-7 of the values'
    # scale); the slowest pair of a 64-wide head still turns by ~1e-4 radians a position, far above that.
    gap, scale = (before - after).abs(), float(before.abs().max())
    changed = (gap > 1e-5 * (before.abs() + after.abs()) + 1e-6 * scale).flatten(0, 1).any(dim=0)
    dims = before.shape[-1]
    while dims > 2 and not changed[dims - 1] and not changed[dims - 2]:
        dims -= 2
    return dims


def rotary(m, inputs: Inputs, layer: int = 0, head: int = 0) -> Rotary:
    """Capture one head's q and k at ``layer`` as the model computes them, before and after its own RoPE.

    Refuses models without rotary positions (learned, sinusoidal, ALiBi, T5's buckets) clearly.
    """
    _require_rotary(m)
    layer, head = check_layer(m, layer), check_head(m, head)
    tokens = inputs.tokens
    if len(tokens) < 2:
        raise InputError("RoPE turns each token by its position: give a text of at least two tokens.")
    positions = torch.arange(len(tokens), device=m.device)
    names = [f"layer.{layer}.attention.q", f"layer.{layer}.attention.k"]

    def same_stream(hidden: torch.Tensor) -> torch.Tensor:
        hidden[1] = hidden[0]  # row 1 enters the block exactly as row 0 does ...
        return hidden

    cache = run(m, inputs, keep=names, edit={f"layer.{layer}.input": same_stream}, rows=2,
                position_ids=torch.stack([positions, torch.zeros_like(positions)]))  # ... but every token at position 0
    (q_after, q), (k_after, k) = ([t.float().cpu() for t in cache[name]] for name in names)
    width = _turned_dims(q, q_after)
    if width == 2 and torch.equal(q, q_after):
        raise FamilyError(f"{m.name} turns no queries or keys in layer {layer}: its positions come another way here.")
    block = sites_of(m).architecture.writer.blocks[layer]
    layout = "interleaved" if hasattr(sys.modules[type(block).__module__], "rotate_every_two") else "half"
    kv_head = kv_groups(q.shape[0], k.shape[0])[head]  # keys repeated per query head, or shared (Falcon broadcasts)
    picked = [q[head, :, :width], q_after[head, :, :width], k[kv_head, :, :width], k_after[kv_head, :, :width]]
    frequencies = _frequencies(picked[0], picked[1], layout)
    angles = positions.cpu().float()[:, None] * frequencies
    return Rotary(tokens.labels, layer, head, frequencies, angles, *picked, layout=layout, head_dim=q.shape[-1])


def _frequencies(before: torch.Tensor, after: torch.Tensor, layout: str) -> torch.Tensor:
    """The angle each pair was turned by at position 1 (radians per position), from the vectors themselves."""
    half = before.shape[-1] // 2
    if layout == "interleaved":
        x, y, x2, y2 = before[1, 0::2], before[1, 1::2], after[1, 0::2], after[1, 1::2]
    else:
        x, y, x2, y2 = before[1, :half], before[1, half:], after[1, :half], after[1, half:]
    return torch.atan2(x * y2 - y * x2, x * x2 + y * y2)


def _require_rotary(m) -> None:
    if m.family == "encoder-decoder" or sites_of(m).architecture.positions != "rotary":
        raise FamilyError(
            f"{m.name} has no rotary position embeddings: its positions are added to the token vectors or to "
            "the attention scores (see the 'positions' steps of m.walk(text)). RoPE is in Llama-like decoders such "
            "as li.load('decoder')."
        )


def rotary_angles(a, positions: int = 64) -> torch.Tensor:
    """[positions, head_dim / 2]: the angle RoPE turns each pair by in architecture ``a`` (an ``Anatomy``):
    position x theta^(-2i/d), from its config alone.

    Example:
        >>> from llminspect.analysis.anatomy import anatomy
        >>> rotary_angles(anatomy("llama-2-7b"), 3)[:, 0].tolist()
        [0.0, 1.0, 2.0]
    """
    theta = a.extra.get("rope theta")
    if a.positions != "rotary" or not theta:
        raise FamilyError(f"{a.name} has {a.positions} positions, not rotary ones.")
    frequencies = theta ** (-torch.arange(0, a.head_dim, 2, dtype=torch.float64) / a.head_dim)
    return (torch.arange(positions, dtype=torch.float64)[:, None] * frequencies).float()
