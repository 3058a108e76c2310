"""One run that keeps and edits sites: the only place in llminspect that registers hooks.

``hooked`` attaches one hook per planned site for a ``with`` block (``run`` is one forward pass
inside it); ``watching`` is the primitive under both, for the few analyses that follow modules
that are not sites (the walk records every module; progress times every block). Every hook is
removed however the block ends. ``attention.q`` / ``attention.k`` are read by a torch function
mode that sees the first q·kᵀ product while their block runs.

Example:
    >>> import llminspect as li
    >>> m = li.load("toy-seq2seq")
    >>> cache = run(m, m.inputs("happy bird eats mouse"), keep=["decoder.layer.*.output"])
    >>> list(cache), tuple(cache["decoder.layer.1.output"].shape)
    (['decoder.layer.0.output', 'decoder.layer.1.output'], (1, 6, 128))
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping

import torch
from torch.overrides import TorchFunctionMode

from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites.places import Site, sites_of
from llminspect.errors import FamilyError, InputError


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
    order = [site for pattern in keep for site in sites_of(m).match(pattern)]
    if any(site.module is None for site in order):
        kept["logits"] = output.logits
    return Cache({site.name: kept[site.name] for site in dict.fromkeys(order) if site.name in kept}, output)


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
