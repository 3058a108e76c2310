"""The room's folder, built before the hub starts: everything a learner's server reads, readable
by every learner and writable by none.

- ``env``: a copy of the instructor's virtual environment, made of hard links (no extra space on
  the same disk, ~2 s), with llminspect itself copied in when it was installed in editable mode
  (the project folder may sit in a private home the learners cannot enter); ``python``: the same
  for the interpreter the venv was made from, when that sits in a private home (pyenv's does).
- ``models``: the prepared model cache, hard-linked from the instructor's and completed with
  ``llminspect prepare``. Every kernel opens the same safetensors files, so the page cache
  holds each model's weights once for the whole room.
- ``lessons``: the master copy each learner gets their own copy of at first start.

Example:
    >>> import tempfile
    >>> private = Path(tempfile.mkdtemp())  # made with mode 700
    >>> blocked_parent(private / "room") == private
    True
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import llminspect
from llminspect.errors import LLMInspectError
from llminspect.models.registry import cache_root
from llminspect.room.disks import inside_private
from llminspect.room.plan import RoomPlan

SKIP = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")


def blocked_parent(folder: Path) -> Path | None:
    """The first existing folder on the way to ``folder`` that other users cannot pass through."""
    for parent in [*reversed(Path(folder).absolute().parents), Path(folder).absolute()]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def _hard_link_copy(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True)
    if done.returncode != 0:  # another disk: a real copy
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)


def _readable_by_all(folder: Path) -> None:
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(folder)], check=True)


def copy_interpreter(target: Path) -> bool:
    """A hard-link copy of the Python the venv was made from, when learners cannot reach it
    (pyenv's lives under a private home); returns whether a copy was made."""
    shutil.rmtree(target, ignore_errors=True)
    if blocked_parent(Path(sys.base_prefix)) is None:
        return False
    _hard_link_copy(Path(sys.base_prefix), target)
    _readable_by_all(target)
    return True


def _point_at_interpreter(env: Path, interpreter: Path) -> None:
    """Re-aim a venv copy's python links and pyvenv.cfg at the copied interpreter."""
    base = str(Path(sys.base_prefix))
    for link in (env / "bin").iterdir():
        if link.is_symlink() and os.readlink(link).startswith(base):
            aim = os.readlink(link).replace(base, str(interpreter), 1)
            link.unlink()
            link.symlink_to(aim)
    config = env / "pyvenv.cfg"
    text = config.read_text().replace(base, str(interpreter))
    config.unlink()  # a hard link to the instructor's own file: write a new one, never through the link
    config.write_text(text)


def copy_environment(target: Path, interpreter: Path | None = None) -> None:
    """Copy the running virtual environment to ``target`` with llminspect installed in it."""
    source = Path(sys.prefix)
    if source == Path(sys.base_prefix):
        raise LLMInspectError("Run the room from the project's virtual environment: `make room`.")
    fresh = target.with_name(target.name + ".new")
    _hard_link_copy(source, fresh)
    if interpreter is not None:
        _point_at_interpreter(fresh, interpreter)
    package = Path(llminspect.__file__).parent
    if not package.is_relative_to(source):  # editable install: its hooks point into the project folder
        site = fresh / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        for hook in site.glob("__editable__*llminspect*"):
            hook.unlink()
        shutil.copytree(package, site / "llminspect", ignore=SKIP)
    quiet_lab(fresh)
    _readable_by_all(fresh)
    shutil.rmtree(target, ignore_errors=True)
    fresh.rename(target)


def quiet_lab(env: Path) -> None:
    """JupyterLab's settings for the whole room: no "get Jupyter news?" prompt, no update checks."""
    overrides = env / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings = json.loads(overrides.read_text()) if overrides.exists() else {}
    settings["@jupyterlab/apputils-extension:notification"] = {"fetchNews": "false", "checkForUpdates": False}
    overrides.unlink(missing_ok=True)  # perhaps a hard link to the instructor's own file: never write through it
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_text(json.dumps(settings, indent=1))


def copy_models(target: Path, python: Path, say: Callable[[str], None]) -> None:
    """The instructor's prepared models (hard links), completed by ``llminspect prepare``."""
    fresh = target.with_name(target.name + ".new")
    if cache_root().exists():
        _hard_link_copy(cache_root(), fresh)
    fresh.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LLMINSPECT_CACHE=str(fresh), HF_HUB_OFFLINE="1", )
    done = subprocess.run([str(python), "-m", "llminspect", "prepare"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise LLMInspectError(f"Preparing the models for the room failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    for line in done.stdout.splitlines():
        say(f"  {line}")
    _readable_by_all(fresh)
    shutil.rmtree(target, ignore_errors=True)
    fresh.rename(target)


def copy_lessons(source: Path, target: Path) -> None:
    """The lessons' master copy, read-only for learners."""
    if not list(source.glob("*.ipynb")):
        raise LLMInspectError(f"No lessons (*.ipynb) in {source}: pass --lessons FOLDER.")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=SKIP)
    _readable_by_all(target)


def build_room(plan: RoomPlan, lessons: Path, say: Callable[[str], None] = print) -> None:
    """Build (or rebuild) everything under ``plan.root`` that learners' servers read."""
    if not plan.shared_account and (blocked := blocked_parent(plan.root)) is not None:
        raise LLMInspectError(f"Learners could not reach {plan.root}: {blocked} is private to its owner. "
                              "Choose a room folder others can enter, e.g. --dir /srv/llminspect-room.")  # fmt: skip
    if not plan.shared_account and (private := inside_private(plan.root)) is not None:
        raise LLMInspectError(f"A room cannot live in {private}: each learner's {private} is their own, so their "
                              "servers would not see it. Choose e.g. --dir /srv/llminspect-room.")  # fmt: skip
    plan.root.mkdir(parents=True, exist_ok=True)
    plan.root.chmod(0o755)
    say(f"Copying the Python environment into {plan.env} (hard links) ...")
    copy_environment(plan.env, plan.interpreter if copy_interpreter(plan.interpreter) else None)
    say(f"Preparing the models into {plan.models} (read-only for learners) ...")
    copy_models(plan.models, plan.python, say)
    say(f"Copying the lessons from {lessons} ...")
    copy_lessons(lessons, plan.lessons)
    plan.homes.mkdir(exist_ok=True)
    plan.homes.chmod(0o711 if not plan.shared_account else 0o700)
