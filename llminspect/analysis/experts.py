"""A mixture of experts, watched token by token: which experts the router picks, and how hard.

Mixtral 8x7B replaces each block's MLP with 8 expert MLPs and a *router*: a linear layer that
scores the 8 experts for every token; the token goes through its 2 best, their outputs mixed
with the top-2 softmax weights (renormalized to sum to 1). Its 46.7B parameters are far too many
to load here, so ``tiny_mixtral`` builds the same architecture scaled down with **random
weights**: the routing mechanism is real, the choices mean nothing.

Example:
    >>> import llminspect as li
    >>> tokenizer = li.load("decoder").tokenizer
    >>> moe = li.Inspector(tiny_mixtral(tokenizer), tokenizer, name="tiny random Mixtral")
    >>> routes = moe.routing("The quick brown fox")
    >>> tuple(routes.chosen.shape), float(routes.weights.sum(-1).mean())
    ((2, 4, 2), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import run
from llminspect.errors import FamilyError


def tiny_mixtral(tokenizer, layers: int = 2, experts: int = 8, per_token: int = 2, seed: int = 0):
    """A random-init transformers Mixtral (hidden 64, 4 query / 2 key-value heads, ``experts`` experts).

    Wrap it to inspect it: ``li.Inspector(tiny_mixtral(tokenizer), tokenizer, name="tiny Mixtral")``.
    """
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(seed)
    config = MixtralConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=experts, num_experts_per_tok=per_token,
        max_position_embeddings=512, sliding_window=None, tie_word_embeddings=False,
    )  # fmt: skip
    return MixtralForCausalLM(config).eval()


@dataclass
class Routing:
    """Per layer and token: the router's scores for every expert, the experts chosen and their mixing weights."""

    tokens: list[str]
    logits: torch.Tensor  # [layers, tokens, experts] router scores
    chosen: torch.Tensor  # [layers, tokens, per_token] expert indices, best first
    weights: torch.Tensor  # [layers, tokens, per_token] mixing weights (sum to 1 per token)

    @property
    def experts(self) -> int:
        return self.logits.shape[-1]

    def mixing(self) -> torch.Tensor:
        """[layers, tokens, experts]: each expert's weight for each token (0 where it was not chosen)."""
        full = torch.zeros_like(self.logits)
        return full.scatter(-1, self.chosen, self.weights)

    def load(self) -> torch.Tensor:
        """[layers, experts]: the share of token slots each expert received (a balanced router gives 1/experts)."""
        counts = torch.nn.functional.one_hot(self.chosen, self.experts).sum(dim=(1, 2)).float()
        return counts / counts.sum(dim=-1, keepdim=True)


def routing(m, inputs: Inputs) -> Routing:
    """Run ``text`` through a mixture-of-experts model and read its router's decisions from ``router_logits``.

    The choice is recomputed here the way Mixtral defines it (softmax over the experts, top-k,
    renormalized); the tests check it against what the model's router returned.
    """
    per_token = getattr(m.config, "num_experts_per_tok", None)
    if not per_token:
        raise FamilyError(
            f"{m.name} has no mixture of experts (no num_experts_per_tok in its config). "
            "Build one with llminspect.analysis.experts.tiny_mixtral(tokenizer)."
        )
    tokens = inputs.tokens
    outputs = run(m, inputs, output_router_logits=True).output
    logits = torch.stack([layer.reshape(len(tokens), -1) for layer in outputs.router_logits]).float().cpu()
    top = logits.softmax(dim=-1).topk(per_token, dim=-1)
    weights = top.values / top.values.sum(dim=-1, keepdim=True)
    return Routing(tokens.labels, logits, top.indices, weights)
