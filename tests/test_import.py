"""``import llminspect`` stays fast: torch and transformers load only when first needed."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_lazy_and_fast():
    code = (
        "import time, sys; t = time.perf_counter(); import llminspect; "
        "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 1.0
    assert out[1:] == ["False", "False"]


def test_public_api_is_exactly_five_names():
    import llminspect as li

    assert sorted(li.__all__) == ["Inspector", "LLMInspectError", "labs", "load", "views"]
    assert callable(li.load) and isinstance(li.Inspector, type) and hasattr(li.views, "token_table")
    assert hasattr(li.labs, "sampling") and not hasattr(li.views, "walk")  # live widgets are labs, views draw data
