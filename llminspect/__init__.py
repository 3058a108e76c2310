"""llminspect: look inside transformer language models, layer by layer, in guided notebooks.

The public API is ``load``, ``Inspector``, ``views`` (figures and pages from plain data), ``labs``
(live widgets) and ``LLMInspectError``. torch and transformers are imported only when first
needed, so ``import llminspect`` is fast.

Example:
    >>> import llminspect as li
    >>> m = li.load("decoder")                                   # doctest: +SKIP
    >>> tr = m.trace("The capital of France is")                 # doctest: +SKIP
"""

from __future__ import annotations

from llminspect.errors import LLMInspectError

__all__ = ["load", "Inspector", "views", "labs", "LLMInspectError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """The public names, imported on first use (plain imports, so the structure test sees them)."""
    if name in ("load", "Inspector"):
        import llminspect.inspector as inspector

        value = getattr(inspector, name)
    elif name == "views":
        import llminspect.views as value
    elif name == "labs":
        import llminspect.labs as value
    else:
        raise AttributeError(f"module 'llminspect' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
