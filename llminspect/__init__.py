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

import importlib

from llminspect.errors import LLMInspectError

__all__ = ["load", "Inspector", "views", "labs", "LLMInspectError"]
__version__ = "0.1.0"

_LAZY = {"load": ("inspector", "load"), "Inspector": ("inspector", "Inspector"), "views": ("views", None),
         "labs": ("labs", None)}  # fmt: skip


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'llminspect' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
