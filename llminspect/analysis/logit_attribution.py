"""Direct logit attribution: how much each part of the model writes straight toward one answer over another.

The last position's stream entering the final norm is a sum: the embeddings, plus what every
attention and every MLP added (the residual stream, lesson 06). The logit difference of two tokens
is ``(W_U[answer] - W_U[other]) · norm(stream)``. The norm divides by the stream's scale (RMSNorm:
its root mean square; LayerNorm: its standard deviation, after centring), which depends on every
part at once — so the difference is not a sum of the parts. **Held at its value on this input**,
the scale is a constant and the norm is linear: each part's share is
``(W_U[answer] - W_U[other]) · (gain ⊙ part) / scale``, and the shares add up to the logit
difference exactly (up to float32). An attention's share splits further into its heads, each head
through its own slice of the output projection.

What it does not say: a part whose output matters only *through later layers* (it moves
information that a later head then writes) gets no direct share — activation patching (lesson 04)
sees that total effect. And the logit lens (lesson 06) reads each layer with *that layer's own*
scale: the lens's difference after block l is the running sum of the shares times
``scale / scale_l`` (plus the norm's bias where it has one).

The decomposition holds when a block adds exactly its attention and MLP outputs to the stream and
the model's tail is the final norm then a linear head; a model that does more (norms after the
attention, soft-capping) is refused, never approximated.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> found = logit_attribution(m, m.inputs("The capital of France is"), " Paris", " Rome")
    >>> abs(found.total - found.difference) < 1e-3
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.interventions import heads_site
from llminspect.analysis.sites import run, sites_of
from llminspect.analysis.tokens import Tokens, single_token, token_labels
from llminspect.errors import FamilyError


@dataclass(frozen=True)
class LogitAttribution:
    """Each part's direct share of logit(answer) - logit(other) at the last position, the final scale frozen."""

    tokens: Tokens
    answer: str
    other: str
    difference: float  # the model's own logit(answer) - logit(other)
    scale: float  # the final norm's scale on this input, held fixed
    norm: str  # how the final norm was read: "RMSNorm", "RMSNorm (1 + weight)" or "LayerNorm"
    embeddings: float  # the embeddings' share
    attention: torch.Tensor  # [layers]: each attention's share
    mlp: torch.Tensor  # [layers]: each MLP's share
    heads: torch.Tensor  # [layers, heads]: each head's share (an attention's = its heads' + its bias's)
    attention_bias: torch.Tensor  # [layers]: the output projection's bias's share (0 without one)
    constant: float  # the final norm's bias and the head's bias (0 for a Llama)
    scales: torch.Tensor  # [layers + 1]: the scale the norm would use on the stream before block 0, after each
    lens: torch.Tensor  # [layers + 1]: the logit lens's difference on those streams (each with its own scale)

    @property
    def total(self) -> float:
        """The shares added up: equals ``difference`` up to float32 rounding."""
        return self.embeddings + float(self.attention.sum() + self.mlp.sum()) + self.constant

    @property
    def running(self) -> torch.Tensor:
        """[layers + 1]: the shares added up to the stream before block 0, after block 0, ..., (no constant)."""
        blocks = (self.attention + self.mlp).cumsum(0)
        return torch.cat([torch.tensor([self.embeddings], dtype=blocks.dtype), self.embeddings + blocks])

    def parts(self) -> list[tuple[str, float]]:
        """(name, share) for the embeddings, every attention and MLP in order, and the constant."""
        rows = [("embeddings", self.embeddings)]
        for layer in range(len(self.attention)):
            rows += [(f"attention {layer}", float(self.attention[layer])), (f"MLP {layer}", float(self.mlp[layer]))]
        return rows + ([("norm and head biases", self.constant)] if self.constant else [])

    def largest(self, n: int = 5, heads: bool = False) -> list[tuple[str, float]]:
        """The ``n`` largest shares by size: parts, or (``heads=True``) single heads named "layer.head"."""
        if heads:
            count = self.heads.shape[1]
            rows = [(f"{i // count}.{i % count}", float(v)) for i, v in enumerate(self.heads.flatten())]
        else:
            rows = self.parts()
        return sorted(rows, key=lambda row: -abs(row[1]))[:n]


def frozen_norm(norm: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[str, Callable, Callable]:
    """How ``norm`` turned ``x`` into ``y`` [hidden] (float64): (name, apply, scale_of), where
    ``apply(v, scale)`` is gain ⊙ Cv / scale (C centres for a LayerNorm; + its bias when ``with_bias``) and
    ``scale_of(v)`` the scale the norm computes from v. A norm of another shape is a FamilyError."""
    eps = next((float(getattr(norm, n)) for n in ("variance_epsilon", "eps", "epsilon") if hasattr(norm, n)), 1e-6)
    weight = getattr(norm, "weight", None)
    gain = torch.ones_like(x) if weight is None else weight.detach().double().flatten().to(x.device)
    bias = getattr(norm, "bias", None)
    bias = torch.zeros_like(x) if bias is None else bias.detach().double().flatten().to(x.device)

    def rms(v: torch.Tensor) -> torch.Tensor:
        return (v.pow(2).mean(-1, keepdim=True) + eps).sqrt()

    def std(v: torch.Tensor) -> torch.Tensor:
        return (v.var(-1, unbiased=False, keepdim=True) + eps).sqrt()

    forms = {
        "RMSNorm": (rms, gain, False),
        "RMSNorm (1 + weight)": (rms, 1 + gain, False),
        "LayerNorm": (std, gain, True),
    }
    for name, (scale_of, g, centred) in forms.items():
        def apply(v, scale, with_bias=False, g=g, centred=centred):
            v = v - v.mean(-1, keepdim=True) if centred else v
            return g * v / scale + (bias if with_bias else 0)

        made = apply(x, scale_of(x), with_bias=True)
        if torch.allclose(made, y, rtol=1e-4, atol=1e-4 * float(y.abs().max()) + 1e-5):
            return name, apply, scale_of
    raise FamilyError(f"The final norm {type(norm).__name__} is neither an RMSNorm nor a LayerNorm as llminspect "
                      "reads them, so its scale cannot be held fixed: direct logit attribution does not apply.")


def _last(cache, name: str) -> torch.Tensor:
    """The last position's vector of a kept site (OPT's MLP works on [tokens, hidden], its batch folded in)."""
    value = cache[name]
    return (value[0, -1] if value.dim() == 3 else value[-1]).double()


def _head_shares(m, cache, layer: int, read) -> tuple[torch.Tensor, float]:
    """Each head's share through its slice of the output projection, and the projection's bias's share."""
    site = sites_of(m)[heads_site(m, layer)]
    values = cache[site.name][0, -1]  # [heads, head_dim]
    heads = values.shape[0]
    alone = torch.zeros(heads, heads, values.shape[1], dtype=values.dtype, device=values.device)
    alone[range(heads), range(heads)] = values  # row h keeps head h only
    with torch.no_grad():
        through = site.module(alone.flatten(1)).double()
        bias = site.module(torch.zeros_like(alone.flatten(1)[:1])).double()[0]
    return torch.tensor([read(v) for v in through - bias], dtype=torch.float64), read(bias)


def _parts_cache(m, inputs: Inputs) -> tuple[dict, object]:
    """One run keeping every part the attribution reads; refuses a model whose stream is not their sum."""
    layers = sites_of(m).architecture.writer.layers
    names = {"attention": [f"layer.{i}.attention.output" for i in range(layers)],
             "mlp": [f"layer.{i}.mlp.output" for i in range(layers)],
             "streams": ["embeddings"] + [f"layer.{i}.output" for i in range(layers)],
             "heads": [heads_site(m, layer) for layer in range(layers)]}  # fmt: skip
    missing = [n for n in (*names["attention"][:1], *names["mlp"][:1], "final_norm") if n not in sites_of(m)]
    if missing:
        raise FamilyError(f"{type(m.model).__name__} has no {', '.join(missing)} site: its blocks do not add an "
                          "attention and an MLP output to a stream read by a final norm (direct logit attribution "
                          "needs that).")  # fmt: skip
    cache = run(m, inputs, keep=[name for group in names.values() for name in group] + ["final_norm", "logits"],
                last_only=True)  # fmt: skip
    streams = [_last(cache, n) for n in names["streams"]]
    added = streams[0] + sum(_last(cache, a) + _last(cache, b)
                             for a, b in zip(names["attention"], names["mlp"], strict=True))  # fmt: skip
    if not torch.allclose(added, streams[-1], rtol=1e-4, atol=1e-4 * float(streams[-1].abs().max())):
        raise FamilyError(f"{type(m.model).__name__}'s blocks add more to the stream than their attention and MLP "
                          "outputs (norms after them, a shared input), so the stream is not the sum of those "
                          "parts: direct logit attribution does not apply.")  # fmt: skip
    return names, cache


def logit_attribution(m, inputs: Inputs, answer: str, other: str) -> LogitAttribution:
    """Direct logit attribution of logit(``answer``) - logit(``other``) after ``inputs`` (decoders)."""
    m.require_decoder("Direct logit attribution")
    ids = [single_token(m.tokenizer, answer), single_token(m.tokenizer, other, "other")]
    names, cache = _parts_cache(m, inputs)
    streams = torch.stack([_last(cache, n) for n in names["streams"]])
    norm = sites_of(m)["final_norm"].module
    kind, apply, scale_of = frozen_norm(norm, streams[-1], _last(cache, "final_norm"))
    head = m.model.get_output_embeddings()
    unembed = head.weight.detach().double()[ids]
    direction = unembed[0] - unembed[1]
    bias = getattr(head, "bias", None)
    head_bias = 0.0 if bias is None else float(bias.detach()[ids[0]] - bias.detach()[ids[1]])
    logits = cache.logits[0, -1].double()
    difference = float(logits[ids[0]] - logits[ids[1]])
    scale = scale_of(streams[-1])
    with torch.no_grad():
        made = float(direction @ apply(streams[-1], scale, with_bias=True)) + head_bias
        # the lens: each stream through the model's own final norm, with its own scale
        lens = torch.tensor([float(direction @ norm(s.to(m.dtype)[None]).double()[0]) + head_bias for s in streams],
                            dtype=torch.float64)
    if abs(made - difference) > 1e-3 * max(1.0, abs(difference)):
        raise FamilyError(f"{type(m.model).__name__} does more to the stream after its final norm than a linear "
                          "head (a scaling or soft-capping of the logits): direct logit attribution does not apply.")

    def read(vector: torch.Tensor) -> float:
        return float(direction @ apply(vector.double(), scale))

    shares = [_head_shares(m, cache, layer, read) for layer in range(len(names["attention"]))]
    constant = float(direction @ apply(torch.zeros_like(direction), scale, with_bias=True)) + head_bias
    return LogitAttribution(
        inputs.tokens, *token_labels(m.tokenizer, ids), difference, float(scale), kind, read(streams[0]),
        torch.tensor([read(_last(cache, n)) for n in names["attention"]], dtype=torch.float64),
        torch.tensor([read(_last(cache, n)) for n in names["mlp"]], dtype=torch.float64),
        torch.stack([s for s, _ in shares]).double(), torch.tensor([b for _, b in shares], dtype=torch.float64),
        constant, torch.cat([scale_of(s) for s in streams]).double(), lens,
    )
