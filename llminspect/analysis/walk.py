"""Layer by layer: step through one forward pass, module by module.

Two ways to get a ``Walk`` (``llminspect.analysis.steps``):
- ``how="hooks"``: forward hooks on the model's own modules record what each one returned during
  one ordinary forward pass. It works for any standard transformers architecture (the blocks are
  found as the model's ``ModuleList``s), offloaded models included. Residual adds are written
  inside each block's ``forward`` and have no module, so here a block's output (the residual
  stream after it) stands for them.
- ``how="by hand"``: ``llminspect.analysis.by_hand`` re-does the forward pass in Python, each
  sub-module called with the masks and positions the model would use, residual adds written out,
  and proves it ends where the model ends.

Example:
    >>> import llminspect as li
    >>> steps = li.load("decoder").walk("The quick brown fox")
    >>> [step.name for step in steps][:3]
    ['embed_tokens', 'rotary_emb', 'input to the blocks']
"""

from __future__ import annotations

import torch

from llminspect.analysis.by_hand import walk_by_hand
from llminspect.analysis.inputs import Inputs
from llminspect.analysis.sites import run, watching
from llminspect.analysis.steps import Step, Walk, batchless, model_output
from llminspect.errors import InputError
from llminspect.models.structure import block_lists, has_state, head_prefix, kind_of


def walk(m, inputs: Inputs, how: str = "hooks") -> Walk:
    """Step through one forward pass of ``m`` on ``inputs``: a ``Walk`` of ``Step``s in execution order."""
    if how not in ("hooks", "by hand"):
        raise InputError(f"how={how!r}: use 'hooks' or 'by hand'.")
    if how == "by hand":
        steps, logits = walk_by_hand(m.model, inputs.tensors)
    else:
        steps, output = walk_with_hooks(m, inputs)
        logits = batchless(getattr(output, "logits", None))
    return Walk(m.family, how, inputs.tokens, steps, logits, inputs.source)


def _shapes(args: tuple, kwargs: dict) -> list[tuple[int, ...]]:
    values = list(args) + list(kwargs.values())
    return [tuple(v.shape) for v in values if isinstance(v, torch.Tensor)]


def walk_with_hooks(m, inputs: Inputs) -> tuple[list[Step], object]:
    """Record every block, every block's direct parts and every other leaf module in one forward pass.

    Parameter-free modules (dropout, activations) are skipped; a rotary embedding (buffers only)
    is kept. Outside the blocks, a module made of parts (BERT's pooler: dense, then tanh) is
    recorded too when its output is not simply its last part's. A module used under two names
    (BART's shared embedding) is named after the stack that calls it. The walk ends on what
    model returns: when the forward pass does more after its last module (Gemma 2's final
    soft-capping), that is one more step. Returns the steps and the model's output.
    """
    recorder = _HookedWalk(m.model)
    with watching(*recorder.hooks()):
        output = run(m, inputs).output
    steps = recorder.steps
    final = model_output(output)
    if final is not None and steps and not _same(steps[-1].output, final):
        capping = getattr(m.config.get_text_config(), "final_logit_softcapping", None)
        label = "final logit soft-capping" if capping else "model output"
        steps.append(Step(label, "head", "", final, [steps[-1].output_shape]))
    return steps, output


class _HookedWalk:
    """The hooks of one hooked walk and the steps they record."""

    def __init__(self, model) -> None:
        self.model, self.stacks = model, block_lists(model)
        # An encoder-decoder has two stacks; their parents ("model.encoder") name the steps inside.
        self.parents = {}
        if len(self.stacks) > 1:
            self.parents = {path.rsplit(".", 1)[0]: path.rsplit(".", 2)[-2] for path, _ in self.stacks}
        self.aliases: dict[int, list[str]] = {}
        for name, module in model.named_modules(remove_duplicate=False):
            self.aliases.setdefault(id(module), []).append(name)
        self.block_ids = {id(block) for _, blocks in self.stacks for block in blocks}
        self.backbone = head_prefix(model)
        self.active: list[str] = []  # parent paths of the stacks running now
        self.entered = dict.fromkeys((path for path, _ in self.stacks), 0)  # blocks run so far, per stack
        self.steps: list[Step] = []
        self.composites: set[int] = set()

    def recorded_modules(self) -> list:
        """Blocks, their direct parts, the leaves outside them, and composites outside them (e.g. the pooler)."""
        stacks, model = self.stacks, self.model
        inside = {id(m) for _, blocks in stacks for block in blocks for m in block.modules() if m is not block}
        holders = {id(m) for _, blocks in stacks for m in model.modules() if any(b is blocks for b in m.modules())}
        chosen = set()
        for _, blocks in stacks:
            for block in blocks:
                chosen.add(id(block))
                chosen.update(id(child) for child in block.children() if has_state(child))
        for module in model.modules():
            if id(module) in inside or not has_state(module):
                continue
            if next(module.children(), None) is None:
                chosen.add(id(module))
            elif module is not model and id(module) not in holders and id(module) not in self.block_ids:
                chosen.add(id(module))
                self.composites.add(id(module))
        return [module for module in model.modules() if id(module) in chosen]  # each once, whatever its names

    def hooks(self) -> tuple[list, list]:
        """The (module, function) pairs to call before and after modules run (``sites.watching``)."""
        before, after = [], []
        for parent in self.parents:
            module = self.model.get_submodule(parent)
            before.append((module, lambda m, a, k, p=parent: self.active.append(p) and None))
            after.append((module, lambda m, a, k, out: self.active.pop() and None))
        for path, blocks in self.stacks:
            before.extend((block, self._counter(path)) for block in dict.fromkeys(blocks))
            before.append((blocks[0], self._stream_start))
        after.extend((module, self._record) for module in self.recorded_modules())
        return before, after

    def _counter(self, path: str):
        def count(module, args, kwargs) -> None:
            self.entered[path] += 1

        return count

    def _stack_of(self, path: str) -> str | None:
        parent = next((p for p in self.parents if path.startswith(p + ".")), None)
        return self.parents.get(parent) if parent else None

    def _stream_start(self, module, args, kwargs) -> None:
        """The stream as it enters the first block (once: a shared block running again is already inside)."""
        if any(self.entered[path] > 1 for path, blocks in self.stacks if any(b is module for b in blocks)):
            return
        value = batchless(args[0] if args else kwargs.get("hidden_states"))
        stack = self._stack_of(self.aliases[id(module)][0])
        name = f"{stack} input to the blocks" if stack else "input to the blocks"
        self.steps.append(Step(name, "residual", "", value, [tuple(value.shape)], None, stack, stream=True))

    def _record(self, module, args, kwargs, output) -> None:
        value = batchless(output)
        if value is None:
            return
        if id(module) in self.composites and self.steps and _same(self.steps[-1].output, value):
            return  # e.g. BERT's embeddings module: its output is its LayerNorm's, already recorded
        names = self.aliases[id(module)]
        path = next((n for n in names if self.active and n.startswith(self.active[-1] + ".")), names[0])
        stack = self._stack_of(path)
        blocks = next((b for b, _ in self.stacks if path.startswith(b + ".")), None)
        layer = self.entered[blocks] - 1 if blocks else None  # counted as run: ALBERT runs one block 12 times
        if id(module) in self.block_ids:
            kind = "block"
        elif self.backbone is not None and not path.startswith(self.backbone):
            kind = "head"  # outside the backbone: lm_head, BERT's cls.predictions.*
        else:
            kind = kind_of(path)  # the whole path: "pooler.dense" is the pooler, not an MLP
        label = "output (residual stream)" if kind == "block" else path.rsplit(".", 1)[-1]
        name = f"layer {layer} · {label}" if layer is not None else label
        name = f"{stack} {name}" if stack else name
        self.steps.append(Step(name, kind, path, value, _shapes(args, kwargs), layer, stack, stream=kind == "block"))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)
