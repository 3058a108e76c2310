"""The room's rules without a hub: sign-in lockout, class codes, limits, ports and a retried start,
disks, notices, the class page's reading and aggregation, the Kubernetes values' limits. Fast."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web

from llminspect.errors import LLMInspectError
from llminspect.room import accounts, authenticator, classpage, classview, disks, homefiles, limits, lockout, ports
from llminspect.room.building import build_room
from llminspect.room.groups import settings
from llminspect.room.plan import WORDS, RoomPlan, board_code
from llminspect.teaching import progress

# --- sign-in ---------------------------------------------------------------------------------


def test_an_address_is_locked_after_its_failures_until_they_age_out():
    rules = lockout.Lockout(per_address=3, per_name=5, window_s=600)
    for second in range(3):
        assert rules.refusal("10.0.0.9", "", now=second) is None
        rules.fail("10.0.0.9", now=second)
    assert rules.refusal("10.0.0.9", "ada", now=10) == ("Too many failed sign-ins from this computer: wait 10 min, "
                                                        "then try again.")  # fmt: skip
    assert rules.refusal("10.0.0.8", "ada", now=10) is None  # another computer is not touched
    assert "wait 30 s" in rules.refusal("10.0.0.9", "", now=570)
    assert rules.refusal("10.0.0.9", "", now=600.5) is None  # the first failure aged out: one more try
    rules.fail("10.0.0.9", now=600.6)  # with the failures at 1 s and 2 s: three in the window again
    assert rules.refusal("10.0.0.9", "", now=600.7) is not None


def test_one_address_cannot_lock_a_name_but_several_can_and_a_success_clears_the_name_only():
    rules = lockout.Lockout(per_address=3, per_name=5, window_s=600)
    for second in range(3):
        rules.fail("10.0.0.9", "ada", now=second)
    assert rules.refusal("10.0.0.2", "ada", now=5) is None  # ada, from her own computer, still signs in
    for second in range(2):
        rules.fail("10.0.0.7", "ada", now=10 + second)
    assert rules.refusal("10.0.0.2", "ada", now=20).startswith("Too many failed sign-ins for 'ada'")
    rules.succeed("ada")
    assert rules.refusal("10.0.0.2", "ada", now=21) is None
    assert rules.refusal("10.0.0.9", "bob", now=21) is not None  # the guesser's address stays locked


def test_a_burst_of_fresh_names_is_forgotten_once_out_of_the_window():
    rules = lockout.Lockout(per_address=1000, per_name=1000, window_s=0.05)
    for number in range(200):
        rules.fail(f"10.0.{number // 250}.{number % 250}", f"name{number}")
    time.sleep(0.06)
    assert rules.tracked() == 0


def test_class_codes_are_two_words_and_three_digits_from_a_space_too_big_to_guess():
    codes = {board_code() for _ in range(200)}
    assert all(re.fullmatch(r"[a-z]{3,4}-[a-z]{3,4}-[1-9]\d\d", code) for code in codes) and len(codes) > 190
    assert len(set(WORDS)) == len(WORDS) == 32 and len(WORDS) ** 2 * 900 == 921_600


class FakeHandler:
    def __init__(self, address: str):
        self.request = SimpleNamespace(headers={"X-Forwarded-For": f"6.6.6.6, {address}"}, remote_ip="127.0.0.1")


def room_authenticator(tmp_path, monkeypatch, **choices) -> tuple[authenticator.ClassCodeAuthenticator, RoomPlan]:
    plan = RoomPlan.new(tmp_path / "room", class_code="owl-fox-427", shared_account=True, **choices)
    plan.save()
    monkeypatch.setattr(authenticator.disks, "room_full", lambda plan: None)
    return authenticator.ClassCodeAuthenticator(plan_file=str(plan.plan_file)), plan


def sign_in(auth, address: str, name: str, password: str, code: str):
    data = {"username": name, "password": password, "otp": code}
    return asyncio.run(auth.authenticate(FakeHandler(address), data))


def test_guessed_codes_are_refused_then_locked_out_on_the_form_and_a_learner_elsewhere_still_gets_in(tmp_path,
                                                                                                     monkeypatch):
    auth, plan = room_authenticator(tmp_path, monkeypatch, sign_in_failures_per_address=4)
    statuses = []
    for guess in range(6):
        try:
            sign_in(auth, "10.0.0.66", f"guesser{guess}", "secret", f"owl-fox-{100 + guess}")
        except web.HTTPError as refusal:
            statuses.append((refusal.status_code, refusal.log_message))
    assert [status for status, _ in statuses] == [403] * 4 + [429] * 2
    assert "class code" in statuses[0][1] and "Too many failed sign-ins from this computer" in statuses[-1][1]
    assert sign_in(auth, "10.0.0.5", "ada", "ada-secret", plan.class_code) == "ada"
    with pytest.raises(web.HTTPError, match="Too many"):  # the right code from the guesser's address: still locked
        sign_in(auth, "10.0.0.66", "bob", "bob-secret", plan.class_code)


def test_the_instructors_name_is_never_locked_by_name_and_gets_no_system_account(tmp_path, monkeypatch):
    auth, plan = room_authenticator(tmp_path, monkeypatch, sign_in_failures_per_address=2, sign_in_failures_per_name=3)
    for address in ("10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2"):
        assert sign_in(auth, address, plan.admin, "wrong", "") is None
    assert sign_in(auth, "10.0.0.3", plan.admin, plan.admin_password, "") == plan.admin
    plan.with_choices(shared_account=False).save()
    assert auth.system_user_exists(SimpleNamespace(name=plan.admin)) is True  # so JupyterHub never makes one


def test_the_password_hash_runs_off_the_event_loop(tmp_path, monkeypatch):
    auth, plan = room_authenticator(tmp_path, monkeypatch)
    slow = accounts._hash

    def slow_hash(password, salt):
        time.sleep(0.6)  # what scrypt costs a busy box, blocking whatever thread runs it
        return slow(password, salt)

    monkeypatch.setattr(accounts, "_hash", slow_hash)

    async def both() -> tuple[str, int]:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        beat = asyncio.create_task(ticker())
        name = await auth.authenticate(FakeHandler("10.0.0.5"), {"username": "ada", "password": "ada-secret",
                                                                 "otp": plan.class_code})  # fmt: skip
        beat.cancel()
        return name, ticks

    name, ticks = asyncio.run(both())
    assert name == "ada" and ticks >= 8  # the loop kept serving while the hash ran


def test_the_address_is_the_proxys_last_forwarded_entry_not_what_a_client_claims():
    claimed = SimpleNamespace(headers={"X-Forwarded-For": "1.2.3.4, 10.0.0.66", "X-Real-Ip": "9.9.9.9"},
                              remote_ip="9.9.9.9")  # fmt: skip
    assert authenticator.client_address(claimed) == "10.0.0.66"
    direct = SimpleNamespace(headers={}, remote_ip="9.9.9.9",
                             connection=SimpleNamespace(context=SimpleNamespace(address=("127.0.0.1", 5555))))
    assert authenticator.client_address(direct) == "127.0.0.1"


# --- limits ----------------------------------------------------------------------------------


def test_limits_keep_the_reserve_and_cap_a_learner_at_the_machine():
    plan = RoomPlan.new(Path("/srv/room"), class_code="owl-fox-427", cpu_per_learner=4, memory_limit_mib=8192)
    small = limits.limits_for(plan, limits.Machine(cores=2, memory_mib=6144, disk_free_mib=10_000))
    assert (small.memory_mib, small.room_memory_mib) == (5120, 5120)  # a learner never gets the hub's reserve
    assert (small.cpu_cores, small.cpu_quota_us) == (2, 200_000)  # nor more cores than the box has
    assert small.learners_on_disk == (10_000 - 4096) // 2048 == 2
    with pytest.raises(limits.LimitError, match="lower --reserve-memory"):
        limits.limits_for(plan, limits.Machine(cores=2, memory_mib=1200, disk_free_mib=10_000))
    with pytest.raises(limits.LimitError, match="--processes 64"):
        limits.limits_for(plan.with_choices(processes_per_learner=10), limits.Machine(2, 24_000, 10_000))


def test_each_controller_gets_its_own_files_in_cgroup_v1_and_v2():
    assert settings("pids", 2, quota_us=100_000, processes=256) == {"pids.max": "256"}
    assert settings("cpu", 1, quota_us=150_000, processes=256)["cpu.cfs_quota_us"] == "150000"
    assert settings("cpu", 2, quota_us=150_000, processes=256) == {"cpu.max": "150000 100000", "cpu.weight": "100"}


def test_the_learners_environment_names_every_limit():
    env = RoomPlan.new(Path("/srv/room"), class_code="owl-fox-427", cpu_per_learner=1.5).learner_env()
    assert (env["LLMINSPECT_ROOM_PROCESSES"], env["LLMINSPECT_ROOM_CPU"], env["LLMINSPECT_ROOM_DISK_MIB"]) == (
        "256", "1.5", "2048")  # fmt: skip


# --- ports and a start that is retried ---------------------------------------------------------


def test_server_ports_never_come_from_the_ephemeral_range():
    low, high = ports.ephemeral_range()
    assert ports.ephemeral_range("1024 65000") == (1024, 65000)
    chosen = ports.candidates(low - 5, (low, high), taken=set())
    assert chosen == list(range(low - 5, low))  # the next 1,995 are ephemeral: none of them
    first = ports.server_port(20_000, set())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first))
        busy.listen()
        free = ports.server_port(first, taken={first + 1})
    assert first < low and free not in (first, first + 1) and first < free < low


def test_a_server_that_loses_its_port_is_started_again_and_the_learner_is_told(tmp_path):
    with socket.socket() as thief:  # another program takes the first port between choosing it and binding
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        stolen = thief.getsockname()[1]
        choices, said, processes = iter([stolen, ports.server_port(20_000, {stolen})]), [], []
        # the thief answers on the port: only the launched process listening there counts as started

        async def launch(port: int) -> tuple[str, int]:
            command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
            processes.append(subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
            return "127.0.0.1", port

        try:
            ip, port = asyncio.run(ports.start_listening(launch, lambda: next(choices), lambda: processes[-1],
                                                         said.append))  # fmt: skip
        finally:
            for process in processes:
                process.kill()
                process.wait()
    assert port != stolen and len(processes) == 2 and processes[0].returncode not in (None, -9)
    assert said == [f"Your server stopped while starting (it stopped with status 1 on port {stolen}); starting it "
                    "again (try 2 of 3) ..."]  # fmt: skip


def test_a_start_that_fails_every_time_ends_with_a_message_for_the_learner():
    async def launch(port: int) -> tuple[str, int]:
        return "127.0.0.1", port

    gone = SimpleNamespace(pid=0, poll=lambda: 1)
    with pytest.raises(ports.StartFailed) as failed:
        asyncio.run(ports.start_listening(launch, lambda: 20_001, lambda: gone, lambda message: None, tries=2))
    assert failed.value.jupyterhub_message.startswith("Your server did not start after 2 tries (it stopped with "
                                                      "status 1 on port 20001). Reload this page")  # fmt: skip


# --- disks -------------------------------------------------------------------------------------


def test_no_new_learner_once_every_full_home_would_eat_into_the_disk_reserve(tmp_path, monkeypatch):
    plan = RoomPlan.new(tmp_path / "room", class_code="owl-fox-427", disk_mib=1024, reserve_disk_mib=1000)
    plan.disks.mkdir(parents=True)
    monkeypatch.setattr(disks, "can_limit", lambda: True)
    free = disks.shutil.disk_usage(tmp_path).free // 2**20
    homes = (free - 1000 - 1024) // 1024  # sparse images: they take nothing yet, but could take all of this
    for number in range(homes + 1):
        with (plan.disks / f"learner{number}.img").open("wb") as image:
            image.truncate(1024 * 2**20)
    assert disks.room_full(plan).startswith("The room's disk is full, so no new learner can join")
    (plan.disks / "learner0.img").unlink()
    assert disks.room_full(plan) is None


def test_a_room_cannot_live_where_each_learner_has_their_own_folder():
    assert disks.inside_private(Path("/tmp/llminspect-room")) == "/tmp"
    assert disks.inside_private(Path("/var/tmp/x/room")) == "/var/tmp"
    assert disks.inside_private(Path("/srv/llminspect-room")) is None
    with pytest.raises(LLMInspectError, match="cannot live in /tmp: each learner's /tmp is their own"):
        build_room(RoomPlan.new(Path("/tmp/llminspect-room-never"), class_code="owl-fox-427"), Path("notebooks"))


def test_what_a_class_left_in_the_shared_folders_is_swept_by_owner(tmp_path):
    needs_root()
    shared = tmp_path / "shared"
    (shared / "torchinductor_learner0" / "cache").mkdir(parents=True)
    (shared / "torchinductor_learner0" / "cache" / "kernel.py").write_text("x")
    (shared / "mine.txt").write_text("the instructor's")
    (shared / "link").symlink_to("/etc/passwd")
    for path in (shared / "torchinductor_learner0", shared / "torchinductor_learner0" / "cache"):
        os.chown(path, 54_321, 54_321)
    os.lchown(shared / "link", 54_321, 54_321)
    removed = disks.sweep({54_321}, folders=(str(shared),))
    assert sorted(Path(path).name for path in removed) == ["link", "torchinductor_learner0"]
    assert sorted(os.listdir(shared)) == ["mine.txt"] and Path("/etc/passwd").exists()


def needs_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            raise RuntimeError("CI runs as root: this test must run")
        pytest.skip("needs root")


# --- what the learner is told ------------------------------------------------------------------


def run_cell(home: Path, env: dict[str, str], code: str) -> str:
    full = dict(os.environ, HOME=str(home), IPYTHONDIR=str(home / ".ipython")) | env
    command = [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "-c", code]
    return subprocess.run(command, env=full, capture_output=True, text=True, timeout=60).stdout


def test_a_refused_fork_a_full_home_and_a_held_cpu_are_each_said_after_the_cell(tmp_path):
    memory_install_notice(tmp_path)
    pids, cpu = tmp_path / "pids.events", tmp_path / "cpu" / "cpu.stat"
    cpu.parent.mkdir()
    pids.write_text("max 0\n")
    cpu.write_text("nr_throttled 0\nthrottled_time 0\n")
    env = {"LLMINSPECT_ROOM_PIDS_FILE": str(pids), "LLMINSPECT_ROOM_CPU_FILE": str(cpu),
           "LLMINSPECT_ROOM_PROCESSES": "256", "LLMINSPECT_ROOM_DISK_MIB": "300", "LLMINSPECT_ROOM_CPU": "1"}
    forked = run_cell(tmp_path, env, f"open({str(pids)!r}, 'w').write('max 4\\n'); print('cell ran')")
    assert forked.index("cell ran") < forked.index("more than this room's 256 processes and threads per learner")
    assert "processes" not in run_cell(tmp_path, env, "print('again')")  # said once
    full = run_cell(tmp_path, env, "import errno, os\nraise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))")
    assert "Your home is full: this room gives each learner 300 MiB, your /tmp included." in full
    held = run_cell(tmp_path, env, f"open({str(cpu)!r}, 'w').write('nr_throttled 9\\nthrottled_time 7000000000\\n')")
    assert "This cell was slowed down for 7 s: the room gives each learner at most 1 core(s)" in held


def memory_install_notice(home: Path) -> None:
    from llminspect.room.memory import install_notice

    install_notice(home)


# --- the class page ----------------------------------------------------------------------------


def test_the_class_page_counts_what_the_quiz_recorded(tmp_path, monkeypatch):
    answers = {"ada": [("03", 3, "right"), ("03", 2, "no answer")],
               "bob": [("03", 3, "not yet"), ("03", 3, "not yet"), ("03", 3, "not yet"), ("05", 1, "right")],
               "cy": [("03", 3, "not yet"), ("03", 3, "right")]}  # fmt: skip
    rows = []
    for name, checks in answers.items():
        monkeypatch.setenv("LLMINSPECT_PROGRESS", str(tmp_path / name / ".llminspect" / "progress.jsonl"))
        for lesson, number, verdict in checks:
            progress.record(lesson, number, "predict", verdict)
        text = homefiles.read_learner_file(tmp_path / name, classpage.PROGRESS, os.getuid())
        rows.append(classview.learner_row(name, progress.parse(text)))
    by_name = {row.name: row.to_json() for row in rows}
    assert [(e["exercise"], e["state"], e["tries"]) for e in by_name["ada"]["exercises"]] == [(2, "trying", 0),
                                                                                              (3, "right", 1)]
    assert (by_name["bob"]["lesson"], by_name["bob"]["stuck"], by_name["bob"]["right"]) == ("05", 1, 1)
    summary = classview.class_summary(rows, {"03": [1, 2, 3]})
    assert summary["03"]["exercises"][3] == {"right": 2, "stuck": 1, "trying": 0, "stuck names": ["bob"]}
    assert summary["03"]["exercises"][1] == {"right": 0, "stuck": 0, "trying": 0, "stuck names": []}
    assert summary["03"]["on it"] == ["ada", "cy"] and summary["05"]["on it"] == ["bob"]


def test_the_lesson_a_learner_has_open_wins_over_their_last_check():
    lines = [{"time": 5, "lesson": "03", "exercise": 1, "kind": "predict", "verdict": "right"}]
    sessions = [{"path": "lessons/02_embeddings.ipynb", "last_activity": "2026-01-01T10:00:00Z"},
                {"path": "lessons/05_sampling.ipynb", "last_activity": "2026-01-01T10:05:00Z"}]
    row = classview.learner_row("ada", lines, sessions)
    assert (row.lesson, row.notebook) == ("05", "lessons/05_sampling.ipynb")


def test_what_a_learner_wrote_reaches_the_class_page_escaped():
    line = {"time": 1, "lesson": "<script>alert(1)</script>", "exercise": 1, "kind": "x", "verdict": "right",
            "mistake": "<img src=x onerror=alert(1)>"}  # fmt: skip
    rows = [classview.learner_row("ada", [line])]
    report = {"time": 0, "learners": [row.to_json() for row in rows], "lessons": classview.class_summary(rows, {})}
    html = classpage.page(report, "/services/class/")
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_a_learners_link_fifo_foreign_or_huge_file_is_never_read(tmp_path):
    home = tmp_path / "ada"
    (home / ".llminspect").mkdir(parents=True)
    (home / ".llminspect" / "progress.jsonl").write_text("x" * 100)
    assert homefiles.read_learner_file(home, ".llminspect/progress.jsonl", os.getuid(), limit=10) == b"x" * 10
    assert homefiles.read_learner_file(home, ".llminspect/progress.jsonl", os.getuid(), limit=10, tail=False) is None
    assert homefiles.read_learner_file(home, ".llminspect/progress.jsonl", os.getuid() + 1) is None  # not theirs
    os.mkfifo(home / "pipe")
    assert homefiles.read_learner_file(home, "pipe", os.getuid()) is None  # no hang
    (home / "other").symlink_to(tmp_path / "bob", target_is_directory=True)
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "secret.ipynb").write_text("{}")
    assert homefiles.read_learner_file(home, "other/secret.ipynb", os.getuid()) is None  # a link on the way
    assert homefiles.read_learner_file(home, "../bob/secret.ipynb", os.getuid()) is None
    assert homefiles.learner_files(home, "other", os.getuid()) == []


def test_a_learners_notebook_is_shown_without_scripts_from_anywhere():
    book = {"cells": [{"id": "c1", "cell_type": "code", "source": "print(1)", "metadata": {}, "execution_count": 1,
                       "outputs": [{"output_type": "display_data", "metadata": {},
                                    "data": {"text/html": "<script>steal()</script>", "text/plain": "x"}}]}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    page = classpage.render_notebook(json.dumps(book).encode(), "ada: 03 (read-only)")
    assert "print" in page and not re.search(r"<script[^>]*src=\"https?://", page)
    assert classpage.SANDBOX.startswith("sandbox;") and "script-src" not in classpage.SANDBOX  # no script runs
    assert "not valid JSON" in classpage.render_notebook(b"{half", "ada: 03")
