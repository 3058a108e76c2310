"""One decoder block opened up: RMSNorm, one attention head, the MLP and the residual adds, in plain torch.

The walk (``how="by hand"``) calls the model's sub-modules in order; this file goes one level
further down and writes every sub-module of one Llama-style block as arithmetic on its weights,
so nothing is a black box:

    n      = x / √(mean(x²) + ε) · g                          RMSNorm (no mean subtracted, no bias)
    q, k, v = n·W_qᵀ, n·W_kᵀ, n·W_vᵀ                            one query head; its key/value head is
                                                              shared by a group of query heads (GQA)
    q, k   = turned by RoPE: angle = position · θ^(−2i/d)
    scores = q·kᵀ / √d, −∞ above the diagonal (causal mask)
    a      = softmax(scores)                                  = the traced attention map
    head   = a·v;  attention output = Σ over heads of head·W_o[:, head's columns]ᵀ
    x      = x + attention output                             the residual stream: each part *adds*
    m      = (silu(n₂·W_gateᵀ) ⊙ n₂·W_upᵀ)·W_downᵀ            the MLP (SwiGLU), n₂ = RMSNorm(x)
    x      = x + m                                            = the next block's input

Every step that has a counterpart in the model is compared with what the model's own modules
computed in one ordinary forward pass (captured by hooks), and the difference is kept.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> block = open_block(m, m.inputs("The quick brown fox"), layer=3, head=5)
    >>> block.largest_difference() < 1e-4
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import check_head, check_layer, run, sites_of, watching
from llminspect.errors import FamilyError, InputError

PARTS = ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp")
LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj")  # fmt: skip


@dataclass(frozen=True)
class HandStep:
    """One operation: what was computed, its formula, its value, and how far it is from the model's own."""

    name: str
    formula: str
    value: torch.Tensor
    model: str = ""  # the module (or trace field) whose result this step reproduces, if any
    difference: float | None = None  # largest |by hand − model|


@dataclass(frozen=True)
class OpenedBlock:
    """The steps of one block, in order, for one text."""

    tokens: list[str]
    layer: int
    head: int
    kv_head: int
    steps: list[HandStep] = field(default_factory=list)

    def __getitem__(self, name: str) -> HandStep:
        return next(step for step in self.steps if step.name == name)

    def largest_difference(self) -> float:
        return max(step.difference for step in self.steps if step.difference is not None)


def _check_block(m, block, length: int) -> None:
    names = {name for name, _ in block.named_modules()}
    if not set(PARTS) | set(LINEARS) <= names or {"self_attn.q_norm", "pre_feedforward_layernorm"} & names:
        raise FamilyError(
            f"open_block writes out a Llama-style block (RMSNorm, q/k/v/o projections, a gated MLP); "
            f"{type(block).__name__} is built differently. m.walk(text, how='hooks') shows any block's parts."
        )
    window = getattr(m.config, "sliding_window", None)
    if window and length > window:
        raise InputError(f"The text has {length} tokens, more than the sliding window ({window}); use a shorter one.")
    if (getattr(m.config, "rope_parameters", None) or {}).get("rope_type", "default") != "default":
        raise FamilyError("open_block turns q and k with plain RoPE; this model rescales its positions.")


def _captured(m, layer: int, block, inputs: Inputs) -> dict[str, torch.Tensor]:
    """What the model's own modules returned in one ordinary forward pass, and the block's input."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, args, kwargs, output):
            seen[name] = (output[0] if isinstance(output, tuple) else output)[0].detach()

        return hook

    modules = {"block": block, **{name: block.get_submodule(name) for name in PARTS}}
    with watching(after=[(module, keep(name)) for name, module in modules.items()]):
        out = run(m, inputs, output_attentions=True, output_hidden_states=True).output
    seen["block input"], seen["attention map"] = out.hidden_states[layer][0], out.attentions[layer][0]
    return seen


def _rms_norm(x: torch.Tensor, gain: torch.Tensor, eps: float) -> torch.Tensor:
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def _turn(x: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE, written out: dimension i and i + d/2 form a pair turned by position · θ^(−2i/d)."""
    tokens, width = x.shape
    frequencies = theta ** (-torch.arange(0, width, 2, dtype=torch.float64) / width)
    angles = torch.arange(tokens, dtype=torch.float64)[:, None] * frequencies[None]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[:, : width // 2], x[:, width // 2 :]
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)


def _linear(x: torch.Tensor, module) -> torch.Tensor:
    return x @ module.weight.T + (module.bias if module.bias is not None else 0)


class _Steps:
    """Records each step with its gap to the model's own result, and hands the value on."""

    def __init__(self) -> None:
        self.steps: list[HandStep] = []

    def __call__(self, name: str, formula: str, value, model: str = "", reference=None):
        difference = None if reference is None else float((value - reference).abs().max())
        self.steps.append(HandStep(name, formula, value.detach(), model, difference))
        return value


def _attention(step: _Steps, attention, n: torch.Tensor, seen: dict, head: int, config) -> torch.Tensor:
    """One query head followed through attention; the other heads computed alike; their sum through o_proj."""
    heads, kv_heads, width = config.num_attention_heads, config.num_key_value_heads, attention.head_dim
    group, theta = heads // kv_heads, config.rope_parameters["rope_theta"]
    kv_head = head // group
    q_all, k_all, v_all = (_linear(n, getattr(attention, p)) for p in ("q_proj", "k_proj", "v_proj"))
    q = step(f"q of head {head}", f"n·W_qᵀ, columns {head * width}–{(head + 1) * width - 1}",
             q_all[:, head * width:(head + 1) * width])  # fmt: skip
    k = step(f"k of key/value head {kv_head}", f"n·W_kᵀ: query heads {group * kv_head}–{group * (kv_head + 1) - 1}"
             " share it", k_all[:, kv_head * width:(kv_head + 1) * width])  # fmt: skip
    v = step(f"v of key/value head {kv_head}", "n·W_vᵀ", v_all[:, kv_head * width:(kv_head + 1) * width])
    q = step("q turned by RoPE", f"pairs (i, i+{width // 2}) turned by position · {theta:g}^(−2i/{width})",
             _turn(q, theta))  # fmt: skip
    k = step("k turned by RoPE", "the same turn, by the key's position", _turn(k, theta))
    scores = q @ k.T / width**0.5
    causal = torch.ones_like(scores, dtype=torch.bool).triu(1)
    scores = step("scores", f"q·kᵀ / √{width}, −∞ above the diagonal", scores.masked_fill(causal, float("-inf")))
    weights = step("attention weights", "softmax of each row", scores.softmax(-1), "the traced attention map",
                   seen["attention map"][head])  # fmt: skip
    mixed = step(f"head {head}'s output", "weights · v", weights @ v)
    columns = f"{head * width}–{(head + 1) * width - 1}"
    own = attention.o_proj.weight[:, head * width:(head + 1) * width]
    part = step(f"head {head}'s share of the attention output", f"head·W_o[:, {columns}]ᵀ", mixed @ own.T)
    others = _all_heads(q_all, k_all, v_all, heads, kv_heads, width, theta, causal) @ attention.o_proj.weight.T - part
    return step("attention output", f"head {head}'s share + the other {heads - 1} heads' shares", part + others,
                "self_attn", seen["self_attn"])  # fmt: skip


def _mlp(step: _Steps, block, x: torch.Tensor, seen: dict, eps: float) -> None:
    mlp = block.mlp
    n2 = step("RMSNorm(x) again", "x / √(mean(x²) + ε) · g₂", _rms_norm(x, block.post_attention_layernorm.weight, eps),
              "post_attention_layernorm", seen["post_attention_layernorm"])  # fmt: skip
    silu = torch.nn.functional.silu
    gate = step("gate", "silu(n₂·W_gateᵀ), silu(z) = z·sigmoid(z)", silu(_linear(n2, mlp.gate_proj)))
    up = step("up", f"n₂·W_upᵀ: {n2.shape[-1]} → {mlp.up_proj.weight.shape[0]} numbers", _linear(n2, mlp.up_proj))
    down = step("MLP output", "(gate ⊙ up)·W_downᵀ", _linear(gate * up, mlp.down_proj), "mlp", seen["mlp"])
    step("x + MLP output", "residual add: the block's output", x + down, "the block's output", seen["block"])


def open_block(m, inputs: Inputs, layer: int, head: int) -> OpenedBlock:
    """Block ``layer`` of a Llama-style decoder written out, following query head ``head`` through attention."""
    m.require_family("Opening a block", "decoder")
    layer, head = check_layer(m, layer), check_head(m, head)
    stack, config = sites_of(m).architecture.writer, m.config
    block = stack.blocks[layer]
    _check_block(m, block, len(inputs.tokens.ids))
    heads, kv_heads = stack.heads, stack.kv_heads
    seen = _captured(m, layer, block, inputs)
    step = _Steps()
    with torch.no_grad():
        x = step("block input x", "the residual stream after the blocks before", seen["block input"])
        n = step("RMSNorm(x)", "x / √(mean(x²) + ε) · g", _rms_norm(x, block.input_layernorm.weight,
                 config.rms_norm_eps), "input_layernorm", seen["input_layernorm"])  # fmt: skip
        x = step("x + attention output", "residual add", x + _attention(step, block.self_attn, n, seen, head, config))
        _mlp(step, block, x, seen, config.rms_norm_eps)
    steps, kv_head = step.steps, head // (heads // kv_heads)
    opened = OpenedBlock(inputs.tokens.labels, layer, head, kv_head, steps)
    wrong = [s.name for s in steps if s.difference is not None and s.difference > 1e-3 * (1 + float(s.value.abs()
             .max()))]  # fmt: skip
    if wrong:  # the recipe claims to be the model's arithmetic: it proves it every time, or refuses
        raise FamilyError(
            f"{type(block).__name__} computes something other than the Llama recipe (different at: {', '.join(wrong)}"
            "); m.walk(text, how='hooks') shows its parts as the model runs them."
        )
    return opened


def _all_heads(q, k, v, heads: int, kv_heads: int, width: int, theta: float, causal) -> torch.Tensor:
    """Every head's weights·v, joined: [tokens, heads · width] (the same arithmetic as one head, all at once)."""
    group = heads // kv_heads
    joined = []
    for h in range(heads):
        g = h // group
        qh = _turn(q[:, h * width:(h + 1) * width], theta)
        kh = _turn(k[:, g * width:(g + 1) * width], theta)
        scores = (qh @ kh.T / width**0.5).masked_fill(causal, float("-inf"))
        joined.append(scores.softmax(-1) @ v[:, g * width:(g + 1) * width])
    return torch.cat(joined, dim=-1)
