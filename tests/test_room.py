"""The workshop room: sign-in rules, separation, memory limit, lessons, clean stop — on a real
JupyterHub with real accounts (tests/room_check.py), inside a network namespace with loopback only."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from llminspect.errors import LLMInspectError
from llminspect.room import accounts, building, disks, groups, kubernetes, memory, running
from llminspect.room.building import blocked_parent, build_room
from llminspect.room.hub import find_proxy
from llminspect.room.plan import RoomPlan

TESTS = Path(__file__).parent
REPO = TESTS.parent


def needs(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            raise RuntimeError(reason)  # CI runs as root on a fresh machine: it must run these
        pytest.skip(reason)


# --- sign-in rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["", "a", "9lives", "x" * 25, "ada/../root", "ada;ls", "Ädа"])
def test_names_that_cannot_be_accounts_are_refused_with_the_rule(typed):
    with pytest.raises(accounts.NameRefused, match="letters, digits or '-'"):
        accounts.learner_name(typed)


def test_a_name_is_claimed_by_the_first_password_and_refused_to_any_other(tmp_path):
    claims = accounts.Claims(tmp_path / "claims.json")
    claims.check_or_claim("ada", "first-secret")
    claims.check_or_claim("ada", "first-secret")  # coming back
    with pytest.raises(accounts.NameRefused, match="already taken"):
        claims.check_or_claim("ada", "guessed")
    with pytest.raises(accounts.NameRefused, match="at least 4"):
        claims.check_or_claim("bob", "pw")
    stored = json.loads((tmp_path / "claims.json").read_text())
    assert "first-secret" not in json.dumps(stored) and set(stored) == {"ada"}
    assert (tmp_path / "claims.json").stat().st_mode & 0o777 == 0o600


def test_a_name_the_machine_already_uses_is_refused():
    with pytest.raises(accounts.NameRefused, match="already uses"):
        accounts.check_free("root")


# --- the plan, the refusals, the Kubernetes file ---------------------------------------------


def test_the_plan_survives_a_restart_with_its_class_code(tmp_path):
    plan = RoomPlan.new(tmp_path / "room", port=8123)
    plan.save()
    again = RoomPlan.load(plan.plan_file)
    assert again == plan and again.class_code == plan.class_code
    assert plan.plan_file.stat().st_mode & 0o777 == 0o600 and plan.state.stat().st_mode & 0o777 == 0o700


def test_a_room_without_root_is_refused_unless_the_unsafe_mode_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(accounts, "running_as_root", lambda: False)
    with pytest.raises(LLMInspectError, match="--unsafe-shared-account"):
        running.start_room(RoomPlan.new(tmp_path / "room"))


def test_a_room_in_a_private_folder_is_refused():
    open_folder = Path(tempfile.mkdtemp())  # pytest's own tmp_path sits in a private folder
    try:
        open_folder.chmod(0o755)
        private = open_folder / "private"
        private.mkdir(mode=0o700)
        assert blocked_parent(private / "room") == private
        assert blocked_parent(open_folder / "room") is None
        plan = RoomPlan.new(private / "room")
        with pytest.raises(LLMInspectError, match=f"{private} is private.*--dir /srv"):
            build_room(plan, REPO / "notebooks")
    finally:
        shutil.rmtree(open_folder)
    assert blocked_parent(Path("/srv/llminspect-room")) is None


def test_the_rooms_copy_of_the_environment_never_writes_through_to_the_instructors(tmp_path, monkeypatch):
    base, env = tmp_path / "base", tmp_path / "venv"
    (base / "bin").mkdir(parents=True)
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python3").symlink_to(base / "bin" / "python3")
    (env / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\n")
    settings = env / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True)
    (settings / "overrides.json").write_text('{"theme": "dark"}')
    copy = tmp_path / "room" / "env"
    building._hard_link_copy(env, copy)
    monkeypatch.setattr(sys, "base_prefix", str(base))
    building._point_at_interpreter(copy, tmp_path / "room" / "python")
    building.quiet_lab(copy)
    assert (env / "pyvenv.cfg").read_text() == f"home = {base / 'bin'}\n"
    assert (settings / "overrides.json").read_text() == '{"theme": "dark"}'
    assert (copy / "pyvenv.cfg").read_text() == f"home = {tmp_path / 'room' / 'python' / 'bin'}\n"
    assert os.readlink(copy / "bin" / "python3") == str(tmp_path / "room" / "python" / "bin" / "python3")
    quiet = json.loads((copy / "share" / "jupyter" / "lab" / "settings" / "overrides.json").read_text())
    assert quiet["theme"] == "dark" and quiet["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_the_kubernetes_values_file_is_the_plans_own():
    committed = yaml.safe_load((REPO / "deploy" / "kubernetes" / "values.yaml").read_text())
    plan = RoomPlan.new(kubernetes.HUB_ROOT, class_code="change-me", admin_password="change-me")
    assert committed == kubernetes.values(plan)
    single = committed["singleuser"]
    assert single["memory"]["limit"] == f"{plan.memory_limit_mib}M" and single["extraEnv"]["HF_HUB_OFFLINE"] == "1"
    assert single["networkPolicy"]["egressAllowRules"]["nonPrivateIPs"] is False  # no way out to the internet
    assert committed["cull"]["timeout"] == plan.idle_timeout_s
    # the same limits as on one box: cores, the home's size, a /tmp of its own, processes (the kubelet's)
    assert single["cpu"]["limit"] == plan.cpu_per_learner == 1.0
    assert single["storage"]["capacity"] == f"{plan.disk_mib}Mi" == "2048Mi"
    assert single["storage"]["extraVolumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert single["storage"]["extraVolumes"][0]["emptyDir"] == {"sizeLimit": "2048Mi"}
    assert single["extraEnv"]["LLMINSPECT_ROOM_PROCESSES"] == "256"
    header = (REPO / "deploy" / "kubernetes" / "values.yaml").read_text().split("\nhub:")[0]
    assert f"podPidsLimit: {plan.processes_per_learner}" in header
    assert json.loads(committed["hub"]["extraFiles"]["room-plan"]["stringData"])["sign_in_failures_per_address"] == 10


def merged_over(base: dict, values: dict) -> dict:
    """``values`` over ``base`` as helm merges a user's values over a chart's: maps key by key, the rest replaced."""
    merged = dict(base)
    for key, value in values.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = merged_over(base[key], value) if both_maps else value
    return merged


def chart_errors(values: dict) -> list[str]:
    """What Zero to JupyterHub's own schema says of ``values`` merged over its chart's defaults."""
    import jsonschema

    chart = REPO / "tests" / "referees" / "zero-to-jupyterhub"
    schema = yaml.safe_load((chart / "values.schema.yaml").read_text())
    merged = merged_over(yaml.safe_load((chart / "values.yaml").read_text()), values)
    errors = jsonschema.Draft7Validator(schema).iter_errors(merged)
    return [f"{'.'.join(map(str, error.path))}: {error.message}" for error in errors]


def test_the_kubernetes_values_pass_the_charts_own_schema():
    committed = yaml.safe_load((REPO / "deploy" / "kubernetes" / "values.yaml").read_text())
    assert chart_errors(committed) == []
    broken = merged_over(committed, {"singleuser": {"memoryLimit": "3G"}, "cull": {"timeout": "an hour"}})
    assert sorted(chart_errors(broken)) == [
        "cull.timeout: 'an hour' is not of type 'integer', 'null'",
        "singleuser: Additional properties are not allowed ('memoryLimit' was unexpected)",
    ]  # the referee catches a misspelt key and a wrong type


# --- the memory limit and what the learner is told --------------------------------------------


def test_a_process_over_its_memory_limit_is_stopped_and_counted():
    needs(accounts.running_as_root() and memory.can_limit(), "needs root and a writable memory cgroup")
    group = memory.limit_group("pytest-hog", 200)
    try:
        before = group.oom_kills()
        hog = subprocess.run([sys.executable, "-c", f"open({str(group.path / 'cgroup.procs')!r}, 'w').write("
                              "str(__import__('os').getpid())); b = bytearray(600 * 2**20); print('survived')"],
                             capture_output=True, text=True)  # fmt: skip
        assert hog.returncode == -9 and "survived" not in hog.stdout
        assert group.oom_kills() == before + 1
    finally:
        group.remove()


def test_the_next_cell_after_an_out_of_memory_stop_says_so_once(tmp_path):
    memory.install_notice(tmp_path)
    oom = tmp_path / "oom_control"
    oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    env = dict(os.environ, HOME=str(tmp_path), IPYTHONDIR=str(tmp_path / ".ipython"),
               LLMINSPECT_ROOM_OOM_FILE=str(oom), LLMINSPECT_ROOM_MEMORY_MIB="2048")  # fmt: skip

    def cell() -> str:
        command = [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "-c", "print('cell ran')"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60).stdout

    first, second = cell(), cell()
    assert "more than this room's 2048 MiB" in first and first.index("stopped") < first.index("cell ran")
    assert "stopped" not in second and "cell ran" in second


# --- a real room ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_room_keeps_learners_apart_and_leaves_nothing_behind(tmp_path):
    needs(accounts.running_as_root(), "a room creates system accounts: run as root (CI does)")
    needs(shutil.which("unshare") is not None, "needs unshare (util-linux) to cut the network")
    needs(find_proxy() is not None, "configurable-http-proxy is missing: `make test` installs it")
    needs(disks.can_limit(), "learners' homes of their own size need loop devices and mkfs.ext4 (e2fsprogs)")
    needs(all(groups._own(c) is not None for c in ("pids", "cpu")), "needs the pids and cpu cgroup controllers")
    out = tmp_path / "room.json"
    command = ["unshare", "-n", sys.executable, str(TESTS / "room_check.py"), str(out), "2", "--cut-network"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    log = out.with_suffix(".log").read_text()[-3000:] if out.with_suffix(".log").exists() else ""
    assert done.returncode == 0, done.stderr[-3000:] + log

    assert report["refused"] == {"wrong code": 403, "system name": 403, "short password": 403}
    assert report["signed in"] == [302, 302] and report["impostor"] == 403
    homes = []
    for result in report["first cell"]:
        assert result["status"] == "ok", result["output"]
        word, uid, home = result["output"].split()
        assert word == "Paris" and int(uid) != 0
        homes.append(home)
    assert len(set(homes)) == 2
    assert report["news prompt"] == "false"  # no "get Jupyter news?" question in a room
    assert report["peek"].splitlines() == [f"{what} refused PermissionError"
                                           for what in ("read", "list", "write", "models", "claims")]  # fmt: skip
    assert report["hog"]["status"] == "died"
    assert report["neighbour after hog"] == {**report["neighbour after hog"], "status": "ok", "output": "2\n"}
    assert report["after hog"]["output"].startswith("Your previous kernel was stopped: it used more than this "
                                                    "room's 2048 MiB per learner.")  # fmt: skip
    assert report["kept after restart"] == "my notes"
    assert report["admin page"] == 200 and report["learner sees admin page"] == 403
    assert report["admin sees"] == {"instructor": False, "learner0": True, "learner1": True}
    assert report["left running"] == {"learner processes": [], "hub": False, "proxy": False}
    assert sorted(report["accounts removed"]) == ["learner0", "learner1"]  # the instructor is no system account
    assert report["instructor account"] is False
    check_the_public_network(report)


def check_the_public_network(report: dict) -> None:
    """What tests/room_hostile.py found: guessing, a hostile learner, the class page, restarts, the next class."""
    guessing = report["guessing"]
    assert guessing["codes"] == [403] * 10 + [429] * 30 and guessing["said"]  # locked out, and told so on the form
    assert guessing["passwords"] == [403] * 10 + [429] * 2 and guessing["owner signs in"] == 302
    assert guessing["hub api max s"] < 2.0  # the hub kept answering during the burst
    hostile = report["hostile"]
    forks = re.match(r"refused after (\d+) forks: Resource temporarily unavailable\nThis cell tried to run more "
                     r"than this room's 256 processes", hostile["fork"])  # fmt: skip
    assert forks and 100 < int(forks.group(1)) < 256, hostile["fork"]
    assert hostile["neighbour after fork"] == "42" and hostile["neighbour writes"] == "ok"
    assert hostile["fill"] == {"status": "error", "no space": True, "told": True}
    assert 200 <= hostile["filled MiB"] <= 300  # their 300 MiB home, /tmp in it; not the machine's disk
    assert hostile["neighbour sees planted"] == "False" and hostile["machine sees planted"] is False
    assert float(hostile["spin"].split()[0]) <= 6 * 1.1 + 0.5  # 3 spinning processes, 1 core's worth of CPU
    assert report["kept by neighbour"] == "1048576"
    page = report["class page"]
    assert report["quiz"] == {"learner0 said": "right / no answer",
                              "learner1 said": "['not yet', 'not yet', 'not yet']"}  # fmt: skip
    assert page["admin status"] == 200 and page["html"] == 200 and page["learner status"] == 403
    assert page["learners"] == {
        "learner0": {"lesson": "03", "notebook": "lessons/03_attention.ipynb", "right": 1, "stuck": 0,
                     "exercises": [["03", 3, "trying", 0], ["03", 5, "right", 1]]},
        "learner1": {"lesson": "03", "notebook": "", "right": 0, "stuck": 1, "exercises": [["03", 5, "stuck", 3]]}}
    assert page["lesson 03"] == {"right": 1, "stuck": 1, "trying": 0, "stuck names": ["learner1"]}
    assert page["notebook"] == {"status": 200, "sandboxed": True, "title": True}
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert report["restarts"]["failures"] == [] and len(report["restarts"]["ports"]) == 4
    assert all(20_000 <= port < low for port in report["restarts"]["ports"])  # never an ephemeral port
    assert report["left in shared folders"] == [] and report["cgroups left"] == []
    assert report["next class"] == {"uid reused": True, "owns elsewhere": [], "home": [".tmp"],
                                    "home is its own disk": True}  # fmt: skip
