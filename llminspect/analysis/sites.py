"""Sites: named places inside a model, and one run that keeps and edits them.

Every analysis that reads or changes what happens inside a model goes through this module — the
idea of TransformerLens's hook points and ``run_with_cache``, and of nnsight's trace, on the
unmodified transformers model, for every family. It is the only place that registers hooks.

The names (``m.sites()`` lists a model's own; an encoder-decoder puts ``encoder.`` or
``decoder.`` in front of each, so ``decoder.layer.1.cross_attention.heads``):

==========================  ========================================================  =======================
site                        what it holds                                             shape (batch first)
==========================  ========================================================  =======================
``embeddings``              the stream entering the first block (= ``layer.0.input``)  [batch, tokens, hidden]
``layer.L.input``           the stream entering block L                               [batch, tokens, hidden]
``layer.L.attention.heads`` each head's output, before the output projection joins     [batch, tokens, heads,
                            them (weights · v)                                        head_dim]
``layer.L.attention.output``what the self-attention module returns (its projection)   [batch, tokens, hidden]
``layer.L.mlp.output``      what the MLP returns                                      [batch, tokens, hidden]
``layer.L.output``          the stream leaving block L (the residual stream)          [batch, tokens, hidden]
``final_norm``              the final norm's output                                   [batch, tokens, hidden]
``logits``                  the model's token scores (read only)                      [batch, tokens, vocab]
==========================  ========================================================  =======================

``attention.q`` and ``attention.k`` are read only: they are the two operands of the block's
first q·kᵀ product, seen by a torch function mode while the block runs — the same for a model
that applies RoPE in a function of its own (no module to hook) and one that fuses q, k and v.

A site appears only where the model has it: BERT's attention and MLP add and normalise inside
their own modules, so it has no ``attention.output`` / ``mlp.output``; a post-norm model has no
``final_norm``. ``run`` keeps sites (``keep=["layer.*.output"]``, patterns allowed) and edits
them (``edit={"layer.3.attention.heads": f}``: ``f`` gets a copy of the value and returns the
new one, or None to leave it), with every hook removed however the run ends.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> def no_head_4(heads):
    ...     heads[:, :, 4] = 0
    ...     return heads
    >>> cache = run(m, m.inputs("The capital of France is"), keep=["layer.*.output"],
    ...             edit={"layer.23.attention.heads": no_head_4})
    >>> cache["layer.29.output"].shape, len(cache)
    (torch.Size([1, 5, 576]), 30)
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from llminspect.analysis.arguments import whole_number
from llminspect.analysis.inputs import Inputs
from llminspect.errors import FamilyError, InputError
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


# --- checked indices: one message shape for every layer and head --------------------------------------------------


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


# --- one run ----------------------------------------------------------------------------------------------------


class Cache(Mapping):
    """What one run kept, by site name (tensors with the batch first), and the model's own output."""

    def __init__(self, values: dict[str, torch.Tensor], output) -> None:
        self._values, self.output = values, output

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._values:
            kept = ", ".join(self._values) or "nothing"
            raise InputError(f"{name!r} was not kept in this run (kept: {kept}); add it to keep=[...].")
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def logits(self) -> torch.Tensor | None:
        return getattr(self.output, "logits", None)


@contextlib.contextmanager
def hooked(m, keep: Iterable[str] = (), edit: Mapping[str, Callable] | None = None):
    """Inside this block every forward pass of ``m`` keeps and edits the named sites; yields what was kept.

    ``run`` is one pass inside this block; ``heads_off`` keeps an edit for any code in a ``with``.
    """
    sites = sites_of(m)
    plan: dict[str, tuple[Site, bool, Callable | None]] = {}
    for pattern in keep:
        for site in sites.match(pattern):
            plan[site.name] = (site, True, None)
    for pattern, function in (edit or {}).items():
        for site in sites.match(pattern):
            if site.module is None:
                raise InputError(f"{site.name} is read only: edit 'final_norm' or a block's output instead.")
            plan[site.name] = (site, site.name in plan, function)
    kept: dict[str, torch.Tensor] = {}
    fired: dict[str, int] = {}
    before, after, watchers = [], [], []
    for site, keeping, function in plan.values():
        if site.reads.startswith("scores"):
            if function is not None:
                raise InputError(f"{site.name} is read only (seen inside the attention's arithmetic): edit "
                                 "attention.heads or a block's input instead.")  # fmt: skip
            watcher = _ScoreOperands(site, kept)
            watchers.append(watcher)
            before.append((site.module, watcher.start))
            after.append((site.module, watcher.stop))
        elif site.module is not None:
            hook = _hook(site, keeping, function, kept, fired)
            (before if site.reads == "input" else after).append((site.module, hook))
    try:
        with watching(before, after):
            yield kept
    finally:
        for watcher in watchers:  # a block that raised never reached its after-hook
            watcher.close()
    if any(count > 1 for count in fired.values()):
        raise FamilyError(f"{type(m.model).__name__} runs one shared block several times in a pass, so a site "
                          "names no single place; sites need one block per layer.")  # fmt: skip


@contextlib.contextmanager
def watching(before: Iterable[tuple] = (), after: Iterable[tuple] = ()):
    """For the ``with`` block, call ``f(module, args, kwargs)`` before and ``f(module, args, kwargs, output)``
    after each (module, f) pair runs — the one place hooks are registered; all removed however it ends.

    A ``before`` function may return new (args, kwargs), an ``after`` function a new output (None: unchanged).

    Example:
        >>> layer, seen = torch.nn.Linear(2, 2), []
        >>> with watching(after=[(layer, lambda module, args, kwargs, out: seen.append(out.shape))]):
        ...     _ = layer(torch.ones(1, 2))
        >>> _ = layer(torch.ones(1, 2))
        >>> seen
        [torch.Size([1, 2])]
    """
    handles = []
    try:
        handles += [module.register_forward_pre_hook(f, with_kwargs=True) for module, f in before]
        handles += [module.register_forward_hook(f, with_kwargs=True) for module, f in after]
        yield
    finally:
        for handle in handles:
            handle.remove()


def run(m, inputs: Inputs | Mapping, keep: Iterable[str] = (), edit: Mapping[str, Callable] | None = None, *,
        rows: int = 1, last_only: bool = False, **forward) -> Cache:  # fmt: skip
    """One forward pass of ``m`` that keeps the sites named in ``keep`` and applies ``edit`` functions.

    ``inputs`` is an ``Inputs`` (or the forward pass's tensors); ``rows`` repeats them as a batch
    (one edit per row); ``last_only`` scores the last position only; ``forward`` goes to the model
    (``output_attentions=True``, ...). Every hook is removed however the run ends.
    """
    keep = [keep] if isinstance(keep, str) else list(keep)
    tensors = dict(inputs.tensors if isinstance(inputs, Inputs) else inputs)
    if rows > 1:
        tensors = {name: value.expand(rows, *value.shape[1:]) for name, value in tensors.items()}
    if last_only and "logits_to_keep" in inspect.signature(m.model.forward).parameters:
        forward["logits_to_keep"] = 1
    with hooked(m, keep, edit) as kept, torch.no_grad():
        output = m.model(**tensors, **{"use_cache": False, **forward})
    if any(site.module is None for pattern in keep for site in sites_of(m).match(pattern)):
        kept["logits"] = output.logits
    order = [site.name for pattern in keep for site in sites_of(m).match(pattern)]
    return Cache({name: kept[name] for name in dict.fromkeys(order) if name in kept}, output)


_MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__}


class _ScoreOperands(TorchFunctionMode):
    """While a block runs, keep one operand of its first q·kᵀ: [..., tokens, d] @ [..., d, tokens], both 4-D."""

    def __init__(self, site: Site, kept: dict) -> None:
        super().__init__()
        self.site, self.kept, self.found, self.active = site, kept, False, False

    def start(self, module, args, kwargs) -> None:
        self.found, self.active = False, True
        self.__enter__()

    def close(self) -> None:
        if self.active:
            self.active = False
            self.__exit__(None, None, None)

    def stop(self, module, args, kwargs, output) -> None:
        self.close()
        if not self.found:
            raise FamilyError(f"{self.site.name}: this block computes its attention scores without a plain q·kᵀ "
                              "product that llminspect can see.")  # fmt: skip

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if not self.found and func in _MATMULS and len(args) == 2 and all(isinstance(a, torch.Tensor) for a in args):
            q, k = args
            if q.dim() == k.dim() == 4 and q.shape[-1] == k.shape[-2] and q.shape[-2] == k.shape[-1]:
                self.found = True
                value = q if self.site.reads == "scores q" else k.transpose(-1, -2)
                self.kept[self.site.name] = value.detach()
        return func(*args, **(kwargs or {}))


def _hook(site: Site, keeping: bool, function: Callable | None, kept: dict, fired: dict) -> Callable:
    """The hook function that reads (and maybe edits) ``site``."""

    def visit(value: torch.Tensor) -> torch.Tensor | None:
        fired[site.name] = fired.get(site.name, 0) + 1
        shaped = value.unflatten(-1, (site.heads, -1)) if site.heads else value
        changed = None
        if function is not None:
            changed = function(shaped.clone())
            if changed is not None and site.heads:
                changed = changed.flatten(-2)
        if keeping:
            result = shaped if changed is None else (changed.unflatten(-1, (site.heads, -1)) if site.heads else changed)
            kept[site.name] = result.detach()
        return changed

    def before(module, args, kwargs):
        changed = visit(args[0] if args else kwargs["hidden_states"])
        if changed is None:
            return None
        if args:
            return (changed, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": changed}

    def after(module, args, kwargs, output):
        changed = visit(output[0] if isinstance(output, tuple) else output)
        if changed is None:
            return None
        return (changed, *output[1:]) if isinstance(output, tuple) else changed

    return before if site.reads == "input" else after
