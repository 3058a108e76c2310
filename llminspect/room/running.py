"""``llminspect room``: build the room, start JupyterHub on the LAN, print what to write on the
board, and stop everything on Ctrl-C.

Example:
    >>> lan_address() != ""
    True
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import llminspect
from llminspect.errors import LLMInspectError
from llminspect.room import accounts, disks, groups
from llminspect.room.building import build_room
from llminspect.room.hub import find_proxy, write_config
from llminspect.room.limits import Limits, Machine, describe, limits_for
from llminspect.room.memory import can_limit, remove_groups
from llminspect.room.plan import RoomPlan

DEFAULT_ROOT = Path("/srv/llminspect-room")
UNSAFE = ("A room keeps learners apart by giving each one a system account, and creating accounts needs root: "
          "run `sudo make room`. To run every learner as your own user instead, pass --unsafe-shared-account "
          "(learners could then read and change each other's notebooks).")  # fmt: skip


def lan_address() -> str:
    """This machine's address on its LAN (the interface of the default route), or 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # a UDP 'connect' sends nothing; it only picks a route
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def default_lessons() -> Path:
    return Path(llminspect.__file__).resolve().parent.parent / "notebooks"


@dataclass
class Room:
    """A running room: its plan and the JupyterHub process."""

    plan: RoomPlan
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 90) -> int:
        """Stop the hub; JupyterHub stops every learner's server and the proxy on its way out."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _end_stragglers()
        clear_up(self.plan)
        return self.process.returncode


def clear_up(plan: RoomPlan) -> None:
    """What a stopped room leaves: nothing in the shared writable folders, no mounted home, no cgroup."""
    disks.sweep(set(accounts.room_uids()))
    disks.unmount_homes(plan)
    remove_groups()
    groups.remove_all()


def _end_stragglers(grace: float = 10) -> None:
    """Kernels whose server has gone end on their own within seconds; stop any that do not."""
    deadline = time.monotonic() + grace
    while accounts.room_processes() and time.monotonic() < deadline:
        time.sleep(0.25)
    for pid in accounts.room_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_until_serving(room: Room, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if room.process.poll() is not None:
            break
        try:
            urllib.request.urlopen(room.plan.url + "hub/api", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    room.stop()
    raise LLMInspectError(f"JupyterHub did not start; the end of its log ({room.log}):\n"
                          + room.log.read_text()[-3000:])  # fmt: skip


def start_room(plan: RoomPlan, lessons: Path | None = None, say: Callable[[str], None] = print) -> Room:
    """Build the room's folder and start JupyterHub; returns when it serves."""
    if not plan.shared_account and not accounts.running_as_root():
        raise LLMInspectError(UNSAFE)
    if find_proxy() is None:
        chp = Path(sys.prefix) / "chp"
        raise LLMInspectError("configurable-http-proxy is not installed: run `make room` once while online "
                              f"(npm install --prefix {chp} configurable-http-proxy@5.3.0).")
    limits = limits_for(plan, Machine.here(plan.root))  # a choice the machine cannot give is refused first
    build_room(plan, lessons or default_lessons(), say)
    prepare_limits(plan, limits)
    config = write_config(plan)
    log = plan.state / "jupyterhub.log"
    process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=plan.state,
                               stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    room = Room(plan, process, log)
    _wait_until_serving(room)
    return room


def prepare_limits(plan: RoomPlan, limits: Limits) -> None:
    """The room's own cgroups (the hub's reserve) and the homes of learners who already have one."""
    if plan.shared_account:
        return
    groups.cap_room(limits)
    for entry in accounts.room_accounts():
        if disks.image(plan, entry.pw_name).exists():
            disks.mount_home(plan, entry.pw_name)


@contextlib.contextmanager
def open_room(plan: RoomPlan, lessons: Path | None = None, say: Callable[[str], None] = print) -> Iterator[Room]:
    """``with open_room(plan) as room:`` — a room that is stopped however the block ends."""
    room = start_room(plan, lessons, say)
    try:
        yield room
    finally:
        room.stop()


def limits_line(plan: RoomPlan) -> str:
    """What bounds each learner on this machine, and what it cannot bound."""
    missing = [what for what, can in (("memory", can_limit()), ("processes", groups.room_group("pids") is not None),
                                      ("CPU", groups.room_group("cpu") is not None), ("disk", disks.can_limit()))
               if not can]  # fmt: skip
    line = describe(limits_for(plan, Machine.here(plan.root)))
    return line + (f"; NO limit on {', '.join(missing)} (this machine offers none)" if missing else "")


def banner(plan: RoomPlan) -> str:
    limit = limits_line(plan) if not plan.shared_account else "no limits (one shared account)"
    apart = "everyone as ONE user (--unsafe-shared-account)" if plan.shared_account else "one system account each"
    return "\n".join([
        "", "llminspect room is open", "",
        f"  Learners open:   {plan.url}",
        f"  Class code:      {plan.class_code}        <- write it on the board",
        f"  Instructor:      name '{plan.admin}', password '{plan.admin_password}'",
        f"  Class page:      {plan.url}services/class/   (who is on which lesson, who is stuck)",
        f"  Learners:        {apart}; own copy of the lessons; idle servers stop after {plan.idle_timeout_s // 60} min",
        f"  Each learner:    {limit}",
        "", "Ctrl-C stops the room and every learner's server.", "",
    ])  # fmt: skip


def plan_from(args: argparse.Namespace) -> RoomPlan:
    """The saved plan of this room folder (same class code after a restart), with today's choices."""
    choices = {"ip": args.ip or lan_address(), "port": args.port, "memory_limit_mib": args.memory,
               "idle_timeout_s": args.idle and args.idle * 60, "shared_account": args.unsafe_shared_account,
               "admin": args.admin, "class_code": args.code, "processes_per_learner": args.processes,
               "cpu_per_learner": args.cpu, "disk_mib": args.disk, "reserve_memory_mib": args.reserve_memory,
               "reserve_disk_mib": args.reserve_disk}  # fmt: skip
    saved = args.dir / "state" / "plan.json"
    if saved.exists():
        return RoomPlan.load(saved).with_choices(**choices)
    return RoomPlan.new(args.dir, **{k: v for k, v in choices.items() if v is not None})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=DEFAULT_ROOT, help="the room's folder (default %(default)s)")
    parser.add_argument("--ip", help="the address learners use (default: this machine's LAN address)")
    parser.add_argument("--port", type=int, help="default 8000")
    parser.add_argument("--code", help="the class code (default: a new one like owl-42, kept across restarts)")
    parser.add_argument("--memory", type=int, help="memory per learner in MiB (default 3072)")
    parser.add_argument("--processes", type=int, help="processes and threads per learner (default 256)")
    parser.add_argument("--cpu", type=float, help="cores per learner at most (default 1)")
    parser.add_argument("--disk", type=int, help="each learner's home in MiB, their /tmp included (default 2048)")
    parser.add_argument("--reserve-memory", type=int, help="MiB no learner takes: the hub's, yours (default 1024)")
    parser.add_argument("--reserve-disk", type=int, help="MiB of disk kept free: no new learner past it (default 4096)")
    parser.add_argument("--idle", type=int, help="stop servers unused for this many minutes (default 60)")
    parser.add_argument("--admin", help="the instructor's sign-in name (default instructor)")
    parser.add_argument("--lessons", type=Path, help="the lessons folder (default: the project's notebooks/)")
    parser.add_argument("--unsafe-shared-account", action="store_true", default=None,
                        help="run every learner as your own user (no separation; no root needed)")  # fmt: skip
    parser.add_argument("--forget", action="store_true", help="delete the learners' accounts and homes, then exit")


def main(args: argparse.Namespace) -> int:
    plan = plan_from(args)
    if args.forget:
        clear_up(plan)
        removed = accounts.remove_accounts(plan)
        print(f"Removed {len(removed)} learner account(s) and their homes: {', '.join(removed) or '-'}")
        return 0
    try:
        room = start_room(plan, args.lessons)
    except LLMInspectError as error:
        print(error, file=sys.stderr)
        return 2
    print(banner(plan), flush=True)
    try:
        room.process.wait()
    except KeyboardInterrupt:
        print("Stopping the room and every learner's server ...", flush=True)
    room.stop()
    return 0
