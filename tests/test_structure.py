"""The package's shape: floors that only look down, no import cycles, modules of one concern.

Floors, lowest first: errors · models (getting a model in) · analysis (inspecting: plain data
out) · views (drawing that data) · inspector (the front door) · labs (live widgets) · teaching
and room (for instructors).
A module imports only from its own floor or lower ones: compute never imports the front door,
and views never run a model.
"""

from __future__ import annotations

import ast
from pathlib import Path

import llminspect

PACKAGE = Path(llminspect.__file__).parent
FLOORS = {"errors": 0, "models": 1, "analysis": 2, "views": 3, "inspector": 4, "labs": 5, "teaching": 6, "room": 6}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(["llminspect", *parts])] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The llminspect modules ``path`` imports, anywhere in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        out.update(name for name in names if name in known)
    return out


def floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.get(parts[1]) if len(parts) > 1 else None


def test_every_import_looks_down_a_floor_or_stays_level():
    known = modules()
    upward = []
    for module, path in known.items():
        here = floor(module)
        if here is None:  # llminspect/__init__ and __main__: the top
            continue
        for target in imports(path, set(known)):
            there = floor(target)
            if there is not None and there > here:
                upward.append(f"{module} -> {target}")
    assert not upward, upward


def test_there_is_no_import_cycle():
    known = modules()
    graph = {module: imports(path, set(known)) - {module} for module, path in known.items()}
    graph = {module: {t for t in targets if not module.startswith(t + ".")} for module, targets in graph.items()}
    state: dict[str, str] = {}

    def visit(module: str, chain: list[str]) -> None:
        state[module] = "open"
        for target in graph.get(module, ()):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(chain + [module, target]))
            if target not in state:
                visit(target, chain + [module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


def test_modules_stay_small_and_functions_short():
    long_modules, long_functions = [], []
    for module, path in modules().items():
        source = path.read_text()
        if source.count("\n") > 400:
            long_modules.append(module)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long_functions.append(f"{module}.{node.name}")
    assert not long_modules and not long_functions, (long_modules, long_functions)


HOOKS = ("register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
         "register_full_backward_pre_hook", "register_backward_hook")  # fmt: skip
SITES = "llminspect.analysis.sites"  # the package: places (where) and running (the hooks)


def calls_named(path: Path, names: tuple[str, ...]) -> list[int]:
    """Lines of ``path`` that call an attribute or function with one of ``names``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in names:
                found.append(node.lineno)
    return found


def test_only_the_sites_module_registers_hooks():
    outside = {module: lines for module, path in modules().items() if not module.startswith(SITES)
               and (lines := calls_named(path, HOOKS))}  # fmt: skip
    assert not outside, f"hooks registered outside {SITES}: {outside}"
    assert calls_named(modules()[f"{SITES}.running"], HOOKS), "the sites package is where hooks are registered"


def test_no_module_imports_by_string():
    """An import by name at call time (importlib.import_module, __import__) hides a dependency from the floors."""
    by_string = {}
    for module, path in modules().items():
        lines = calls_named(path, ("import_module", "__import__"))
        if lines:
            by_string[module] = lines
    assert not by_string, by_string


def test_analyses_change_no_module_attribute_of_transformers():
    """No analysis swaps a function inside transformers' modules (process-global; RoPE was once read that way)."""
    swapped = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr.startswith("apply_"):
                        swapped.append(f"{module}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr":
                swapped.append(f"{module}:{node.lineno} (setattr)")
    assert not swapped, swapped
