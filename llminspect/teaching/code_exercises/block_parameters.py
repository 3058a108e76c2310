"""Lesson 07: the parameters of one Llama-style block from its config, checked against the real module.

Each case builds the architecture on PyTorch's meta device (shapes, no memory) and counts the
parameters of its first block: the embedded SmolLM2, Llama-2-7B (full attention), Mistral-7B and
Llama-3-70B (grouped-query attention), and a small Llama with biases on every projection.

Example:
    >>> from transformers import LlamaConfig
    >>> block_parameters(LlamaConfig(hidden_size=8, intermediate_size=16, num_attention_heads=2,
    ...                              num_key_value_heads=1))
    592
"""

from __future__ import annotations

import torch

from llminspect.analysis.anatomy import load_config
from llminspect.teaching.code_exercises.checking import Case, CodeExercise, Mistake

NAMES = ("smollm2-135m", "llama-2-7b", "mistral-7b", "llama-3-70b")


def block_parameters(config):
    """Parameters of one block: attention (q, k, v, o) with grouped-query k and v, the gated MLP, two RMSNorms."""
    hidden, heads, kv_heads = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    attention = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden
    if getattr(config, "attention_bias", False):  # q, k, v and o each add one bias per output number
        attention += heads * head_dim + 2 * kv_heads * head_dim + hidden
    mlp = 3 * hidden * config.intermediate_size  # gate and up: hidden -> intermediate; down: back
    if getattr(config, "mlp_bias", False):
        mlp += 2 * config.intermediate_size + hidden
    return attention + mlp + 2 * hidden  # the norms before attention and before the MLP: one gain per number


def counted(config) -> int:
    """The first block's parameters, counted on the model transformers builds from ``config`` (meta device)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.model.layers[0].parameters())


def cases() -> list[Case]:
    from transformers import LlamaConfig

    configs = [(name, load_config(name)[0]) for name in NAMES]
    configs.append(("a small Llama with biases on its attention and MLP", LlamaConfig(
        hidden_size=256, intermediate_size=688, num_attention_heads=8, num_key_value_heads=2, num_hidden_layers=1,
        vocab_size=100, attention_bias=True, mlp_bias=True)))  # fmt: skip
    return [Case(name, (config,), counted(config)) for name, config in configs]


def _full_attention(config):
    hidden = config.hidden_size
    return 4 * hidden * hidden + 3 * hidden * config.intermediate_size + 2 * hidden


def _two_matrices(config):
    return block_parameters(config) - config.hidden_size * config.intermediate_size - (
        config.intermediate_size if getattr(config, "mlp_bias", False) else 0)  # fmt: skip


def _no_norms(config):
    return block_parameters(config) - 2 * config.hidden_size


def _one_norm(config):
    return block_parameters(config) - config.hidden_size


def _no_biases(config):
    hidden, heads, kv_heads = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
    head_dim = hidden // heads
    return 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + 3 * hidden * config.intermediate_size \
        + 2 * hidden  # fmt: skip


def _no_output_projection(config):
    hidden, heads = config.hidden_size, config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    bias = hidden if getattr(config, "attention_bias", False) else 0
    return block_parameters(config) - heads * head_dim * hidden - bias


EXERCISE = CodeExercise(
    "Count the parameters of one Llama-style block from its config: q, k, v and o projections (k and v with "
    "num_key_value_heads heads), the gated MLP, the two norms, and biases where config.attention_bias / "
    "config.mlp_bias say so. It is checked against the block transformers builds.",
    "block_parameters(config) -> int", block_parameters, cases,
    [Mistake("forgetting grouped-query attention (k and v as big as q)", "k and v have num_key_value_heads heads, "
             "not num_attention_heads.", _full_attention),
     Mistake("forgetting the MLP's gate", "a gated MLP has three matrices: gate, up and down.", _two_matrices),
     Mistake("forgetting the norms", "each RMSNorm has one gain per hidden number, and a block has two.", _no_norms),
     Mistake("counting one norm", "a block normalises before the attention and again before the MLP.", _one_norm),
     Mistake("leaving out the biases", "some configs switch biases on: config.attention_bias and "
             "config.mlp_bias (absent: no biases).", _no_biases),
     Mistake("forgetting the output projection", "after the heads, o_proj maps them back to the hidden size.",
             _no_output_projection)],
    "q is hidden × (heads · head_dim); k and v are hidden × (kv_heads · head_dim) each — grouped-query attention "
    "makes them 3× smaller in SmolLM2 and 8× in Llama-3-70B; o maps the heads back; the MLP's gate, up and down "
    "are hidden × intermediate each; two norms add 2 × hidden.",
    tolerance=0.0, hint="print each part's count for SmolLM2 next to decoder.model.model.layers[0]'s modules.",
)  # fmt: skip
