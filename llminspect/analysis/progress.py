"""Per-layer progress for long forward passes (streamed models), so a slow run never looks like a hang.

People tracing models through layer-streaming tools report anything from 13 s to 28 min per
token with no feedback. ``layer_progress`` hooks every transformer block, times it, and drives
a tqdm bar (a widget in JupyterLab, text in a terminal) whose ETA comes from the blocks done.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")
    >>> with layer_progress(m.model, show=False) as timing:
    ...     _ = m.trace("The quick brown fox")
    >>> len(timing.seconds) == m.config.num_hidden_layers
    True
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from llminspect.analysis.sites import watching
from llminspect.models.structure import block_lists


@dataclass
class LayerTiming:
    """Seconds each block took in the last run, in execution order, with the blocks' paths."""

    names: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.seconds)


@contextlib.contextmanager
def layer_progress(model, show: bool = True, description: str = "layers"):
    """Time every block of ``model`` while the ``with`` body runs; show a bar with the ETA when ``show``."""
    blocks = [(f"{path}.{i}", block) for path, stack in block_lists(model) for i, block in enumerate(stack)]
    timing, started = LayerTiming(), {}
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(blocks), desc=description, unit="layer")

    def before(name):
        def hook(module, args, kwargs):
            started[name] = time.perf_counter()

        return hook

    def after(name):
        def hook(module, args, kwargs, output):
            seconds = time.perf_counter() - started.pop(name, time.perf_counter())
            timing.names.append(name)
            timing.seconds.append(seconds)
            if bar is not None:
                bar.set_postfix_str(f"{name}: {seconds:.2f} s", refresh=False)
                bar.update(1)

        return hook

    try:
        with watching([(b, before(name)) for name, b in blocks], [(b, after(name)) for name, b in blocks]):
            yield timing
    finally:
        if bar is not None:
            bar.close()
