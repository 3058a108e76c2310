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

Rather than re-deriving q and k for each architecture (fused projections, q/k norms, ...), the
capture wraps the model's own ``apply_rotary_pos_emb`` while one layer runs and keeps exactly
what went in and came out. The frequencies are read off the turn the model gave position 1.

Example:
    >>> import llminspect as li
    >>> rope = li.load("decoder").rotary("The quick brown fox")
    >>> tuple(rope.angles.shape), round(float(rope.frequencies[0]), 3), rope.layout
    ((4, 32), 1.0, 'half')
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

import torch

from llminspect.analysis.attention import kv_groups
from llminspect.analysis.inputs import Inputs
from llminspect.errors import FamilyError, InputError
from llminspect.models.structure import block_lists


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


@contextlib.contextmanager
def _recording_rotations(block, calls: list):
    """Wrap the model's own ``apply_rotary_pos_emb`` while ``block`` runs; append (inputs, outputs) of each call."""
    module = sys.modules[type(block).__module__]
    original = getattr(module, "apply_rotary_pos_emb", None)
    if original is None:
        raise FamilyError("no rotary position embeddings found (no apply_rotary_pos_emb next to its blocks)")
    running = []

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if running:
            calls.append((args, result))
        return result

    handles = [block.register_forward_pre_hook(lambda *_: running.append(True)),
               block.register_forward_hook(lambda *_: running.clear())]  # fmt: skip
    module.apply_rotary_pos_emb = wrapper
    try:
        yield
    finally:
        module.apply_rotary_pos_emb = original
        for handle in handles:
            handle.remove()


def _as_heads_first(tensor: torch.Tensor, tokens: int, seq_first: bool) -> torch.Tensor:
    """[heads, tokens, dims] from a [1, heads, tokens, dims] or (GPT-J) [1, tokens, heads, dims] tensor."""
    value = tensor[0].detach().float().cpu()
    value = value.transpose(0, 1) if seq_first else value
    if value.shape[1] != tokens:
        raise FamilyError("the rotary function was called on tensors of an unexpected shape")
    return value


def _captured(calls: list, tokens: int):
    """(q before, q after, k before, k after), each [heads, tokens, dims], from the recorded calls."""
    if len(calls) == 1 and isinstance(calls[0][1], tuple):  # apply(q, k, cos, sin) -> (q, k)
        (q, k, *_), (q_after, k_after) = calls[0]
        seq_first = False
    elif len(calls) == 2 and isinstance(calls[0][1], torch.Tensor):  # GPT-J: apply(k, ...), then apply(q, ...)
        (k, *_), k_after = calls[0]
        (q, *_), q_after = calls[1]
        seq_first = True
    elif not calls:
        raise FamilyError("this layer turns no queries or keys (positions come another way here, e.g. ALiBi)")
    else:
        raise FamilyError(f"its rotary function was called {len(calls)} times in one layer, in an unknown way")
    return [_as_heads_first(t, tokens, seq_first) for t in (q, q_after, k, k_after)]


def _turned_dims(before: torch.Tensor, after: torch.Tensor) -> int:
    """How many leading dimensions RoPE turned (the rest pass through equal, as in GPT-NeoX and Phi-3)."""
    changed = (before - after).abs().amax(dim=(0, 1)) > 0
    dims = before.shape[-1]
    while dims > 2 and not changed[dims - 1] and not changed[dims - 2]:
        dims -= 2
    return dims


def rotary(m, inputs: Inputs, layer: int = 0, head: int = 0) -> Rotary:
    """Capture one head's q and k at ``layer`` as the model computes them, before and after its own RoPE.

    Refuses models without rotary positions (learned, sinusoidal, ALiBi, T5's buckets) clearly.
    """
    blocks = _rotary_blocks(m)
    if not 0 <= layer < len(blocks):
        raise InputError(f"layer={layer}: {m.name} has layers 0 to {len(blocks) - 1}.")
    tokens = inputs.tokens
    if len(tokens) < 2:
        raise InputError("RoPE turns each token by its position: give a text of at least two tokens.")
    calls: list = []
    try:
        with _recording_rotations(blocks[layer], calls), torch.no_grad():
            m.model(**inputs.tensors, use_cache=False)
        q, q_after, k, k_after = _captured(calls, len(tokens))
    except FamilyError as error:
        raise FamilyError(f"{m.name} cannot be shown with rotary(): {error}.") from error
    if not 0 <= head < q.shape[0]:
        raise InputError(f"head={head}: layer {layer} of {m.name} has heads 0 to {q.shape[0] - 1}.")
    kv_head = kv_groups(q.shape[0], k.shape[0])[head]
    width = _turned_dims(q, q_after)
    layout = "interleaved" if hasattr(sys.modules[type(blocks[layer]).__module__], "rotate_every_two") else "half"
    picked = [q[head, :, :width], q_after[head, :, :width], k[kv_head, :, :width], k_after[kv_head, :, :width]]
    frequencies = _frequencies(picked[0], picked[1], layout)
    positions = torch.arange(len(tokens), dtype=torch.float32)[:, None]
    return Rotary(tokens.labels, layer, head, frequencies, positions * frequencies, *picked, layout=layout,
                  head_dim=q.shape[-1])  # fmt: skip


def _frequencies(before: torch.Tensor, after: torch.Tensor, layout: str) -> torch.Tensor:
    """The angle each pair was turned by at position 1 (radians per position), from the vectors themselves."""
    half = before.shape[-1] // 2
    if layout == "interleaved":
        x, y, x2, y2 = before[1, 0::2], before[1, 1::2], after[1, 0::2], after[1, 1::2]
    else:
        x, y, x2, y2 = before[1, :half], before[1, half:], after[1, :half], after[1, half:]
    return torch.atan2(x * y2 - y * x2, x * x2 + y * y2)


def _rotary_blocks(m):
    stacks = block_lists(m.model)
    module = sys.modules[type(stacks[-1][1][0]).__module__]
    if m.family == "encoder-decoder" or not hasattr(module, "apply_rotary_pos_emb"):
        raise FamilyError(
            f"{m.name} has no rotary position embeddings: its positions are added to the token vectors or to "
            "the attention scores (see the 'positions' steps of m.walk(text)). RoPE is in Llama-like decoders such "
            "as li.load('decoder')."
        )
    return stacks[-1][1]


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
