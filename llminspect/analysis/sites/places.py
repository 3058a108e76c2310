"""Where the sites are: each model's named places resolved once from its structure, and checked indices.

``Sites`` maps every name (``layer.3.output``, ``decoder.layer.1.cross_attention.heads``, ...) to
a ``Site``: the module whose input or output it is. ``check_layer`` / ``check_head`` /
``check_stream`` turn a learner's index into a checked one with one message shape. The package
docstring (``llminspect.analysis.sites``) lists the names.

Example:
    >>> import llminspect as li
    >>> sites = sites_of(li.load("decoder"))
    >>> sites["layer.3.attention.heads"].path, sites.architecture.writer.heads
    ('model.layers.3.self_attn.o_proj', 9)
"""

from __future__ import annotations

import difflib
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from llminspect.analysis.arguments import whole_number
from llminspect.errors import InputError
from llminspect.models.architecture import Architecture, Stack, describe
from llminspect.models.structure import kind_of

OUTPUT_PROJECTIONS = ("o_proj", "out_proj", "c_proj", "dense", "o", "out_lin")
ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")
FINAL_NORMS = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "layer_norm", "final_norm")
MLP_NAMES = ("mlp", "feed_forward", "block_sparse_moe", "ffn", "fc2")  # OPT, BART, Whisper: fc1, act, fc2


@dataclass(frozen=True)
class Site:
    """One named place: a module, and whether the value is what it reads ("input") or returns ("output")."""

    name: str
    what: str  # said to people
    module: torch.nn.Module | None  # None for the logits (read off the model's output)
    path: str  # the module's dotted path in the model
    reads: str  # "input", "output", or "scores q" / "scores k" (an operand of q·kᵀ while the block runs)
    stack: str = ""
    layer: int | None = None
    heads: int | None = None  # for head sites: the value is viewed as [..., heads, head_dim]

    def __repr__(self) -> str:
        return f"Site({self.name!r}: {self.what}, {self.reads} of {self.path or 'the model'})"


class Sites(Mapping):
    """Every site of one model by name, in forward order, with the model's ``Architecture``."""

    def __init__(self, model) -> None:
        self.architecture: Architecture = describe(model)
        self._sites: dict[str, Site] = {}
        names = {id(module): name for name, module in model.named_modules()}
        for stack in self.architecture.stacks:
            for site in _stack_sites(model, stack, names):
                self._sites[site.name] = site
        if model.get_output_embeddings() is not None:  # a model without a language-model head scores no tokens
            self._sites["logits"] = Site("logits", "the model's token scores (read only)", None, "", "output")

    def __getitem__(self, name: str) -> Site:
        return self._sites[name]

    def __iter__(self):
        return iter(self._sites)

    def __len__(self) -> int:
        return len(self._sites)

    def match(self, pattern: str) -> list[Site]:
        """The sites a name or pattern names (``"layer.*.output"``: every block's output, a ``*`` never crossing a
        dot); an unknown one is refused with near names."""
        if pattern in self._sites:
            return [self._sites[pattern]]
        parts = re.escape(pattern).replace(r"\*", "[^.]*").replace(r"\?", "[^.]")  # a star stays inside one part
        found = [site for name, site in self._sites.items() if re.fullmatch(parts, name)]
        if not found:
            near = difflib.get_close_matches(pattern, list(self._sites), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
            raise InputError(f"No site is called {pattern!r} in this model.{hint} m.sites() lists them all.")
        return found

    def __repr__(self) -> str:
        """The names in short: ``layer.L.…`` once for every layer, e.g. ``layer.L.output (L = 0–29)``."""
        shapes: dict[str, list[int]] = {}
        for site in self._sites.values():
            short = site.name if site.layer is None or site.name.endswith("embeddings") else re.sub(
                r"layer\.\d+\.", "layer.L.", site.name)
            shapes.setdefault(short, []).append(site.layer)
        parts = [f"{short} (L = 0–{max(layers)})" if "layer.L." in short else short for short, layers in shapes.items()]
        return f"{len(self)} sites: " + ", ".join(parts)

    def table(self) -> list[dict]:
        """One row per site: name, what it holds, which module (for printing or a DataFrame)."""
        return [{"site": s.name, "holds": s.what, "module": s.path, "reads": s.reads} for s in self._sites.values()]


_RESOLVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sites_of(m) -> Sites:
    """The ``Sites`` of a loaded model, resolved once per model."""
    if m.model not in _RESOLVED:
        _RESOLVED[m.model] = Sites(m.model)
    return _RESOLVED[m.model]


def _stack_sites(model, stack: Stack, names: dict[int, str]) -> list[Site]:
    prefix = f"{stack.name}." if stack.name else ""
    sites = [Site(f"{prefix}embeddings", "the stream entering the first block", stack.blocks[0],
                  names.get(id(stack.blocks[0]), ""), "input", stack.name, 0)]  # fmt: skip
    for layer, block in enumerate(stack.blocks):
        here = f"{prefix}layer.{layer}"
        path = names.get(id(block), "")
        sites.append(Site(f"{here}.input", f"the stream entering block {layer}", block, path, "input", stack.name,
                          layer))  # fmt: skip
        parts = dict(block.named_children())
        attention = next((parts[n] for n in ATTENTION_NAMES if n in parts), None)
        projection = _output_projection(block, cross=False)
        for which, words in (("q", "the queries"), ("k", "the keys")):
            sites.append(Site(f"{here}.attention.{which}", f"{words} as the scores q·kᵀ use them", block, path,
                              f"scores {which}", stack.name, layer))  # fmt: skip
        if projection is not None:
            sites.append(Site(f"{here}.attention.heads", "each head's output (weights · v) before the output "
                              "projection joins them", projection[1], f"{path}.{projection[0]}", "input", stack.name,
                              layer, stack.heads))  # fmt: skip
        if attention is not None and not hasattr(attention, "output"):
            sites.append(Site(f"{here}.attention.output", "what the self-attention returns", attention,
                              names.get(id(attention), ""), "output", stack.name, layer))  # fmt: skip
        cross = _output_projection(block, cross=True)
        if cross is not None:
            sites.append(Site(f"{here}.cross_attention.heads", "each cross-attention head's output before its "
                              "output projection", cross[1], f"{path}.{cross[0]}", "input", stack.name, layer,
                              stack.heads))  # fmt: skip
        mlp = next((parts[n] for n in MLP_NAMES if n in parts), None)
        if mlp is not None:
            sites.append(Site(f"{here}.mlp.output", "what the MLP returns", mlp, names.get(id(mlp), ""), "output",
                              stack.name, layer))  # fmt: skip
        sites.append(Site(f"{here}.output", f"the stream leaving block {layer}", block, path, "output", stack.name,
                          layer))  # fmt: skip
    norm = _final_norm(model, stack)
    if norm is not None:
        sites.append(Site(f"{prefix}final_norm", "the final norm's output", norm, names[id(norm)], "output",
                          stack.name))  # fmt: skip
    return sites


def _output_projection(block, cross: bool) -> tuple[str, torch.nn.Module] | None:
    """The one linear layer that joins a block's (cross-)attention heads: o_proj, out_proj, attention.output.dense."""
    found = []
    for name, module in block.named_modules():
        parts = name.lower().split(".")
        if len(parts) < 2 or parts[-1] not in OUTPUT_PROJECTIONS:
            continue
        if (kind_of(name) == "cross-attention") != cross:
            continue
        if any("attn" in part or "attention" in part for part in parts[:-1]):
            found.append((name, module))
    return found[0] if len(found) == 1 else None


def _final_norm(model, stack: Stack) -> torch.nn.Module | None:
    """The norm a stack applies after its last block (Llama's ``model.norm``, GPT-2's ``ln_f``, OPT's
    ``final_layer_norm``): a child of the stack's parent with one of the names models give it."""
    parent = stack.path.rsplit(".", 1)[0] if "." in stack.path else ""
    children = dict(model.get_submodule(parent).named_children())
    return next((children[name] for name in FINAL_NORMS if name in children), None)


# checked indices: one message shape for every layer and head


def check_layer(m, layer, stack: str | None = None, what: str = "layer") -> int:
    """``layer`` as an index into a stack's blocks, or a clear InputError naming the range."""
    chosen = sites_of(m).architecture.stack(stack)
    layer = whole_number(layer, what, minimum=None)
    if not 0 <= layer < chosen.layers:
        where = f"{chosen.name} layers" if chosen.name else "layers"
        raise InputError(f"{what}={layer}: {m.name} has {where} 0 to {chosen.layers - 1}.")
    return layer


def check_stream(m, layer, stack: str | None = None, what: str = "layer") -> int:
    """An index into a stack's hidden states (0: the embeddings, l + 1: after block l; negatives count from
    the end, -1: the last), or a clear InputError naming the range."""
    chosen = sites_of(m).architecture.stack(stack)
    layer = whole_number(layer, what, minimum=None)
    if not -(chosen.layers + 1) <= layer <= chosen.layers:
        where = f"{chosen.name} hidden states" if chosen.name else "hidden states"
        raise InputError(f"{what}={layer}: {m.name} has {where} 0 to {chosen.layers} (0: the embeddings, -1: the "
                         "last).")  # fmt: skip
    return layer


def check_head(m, head, stack: str | None = None, what: str = "head") -> int:
    """``head`` as an index into a stack's query heads, or a clear InputError naming the range."""
    chosen = sites_of(m).architecture.stack(stack)
    head = whole_number(head, what, minimum=None)
    if not 0 <= head < chosen.heads:
        raise InputError(f"{what}={head}: {m.name} has heads 0 to {chosen.heads - 1} in each layer.")
    return head
