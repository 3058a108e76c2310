"""What a learner's kernel says when they meet one of the room's limits, in the cell that met it.

The room installs a start-up file in each learner's IPython profile (``room.memory.install_notice``)
that calls :func:`watch`. It reads the learner's own cgroup files (their paths come in the
environment) and says, in plain words and with what to do:

- **memory**: above the first cell of a fresh kernel, that the previous one was stopped;
- **processes**: after a cell in which a start of a process or thread was refused;
- **disk**: after a cell that failed because their home (which holds their /tmp) is full;
- **CPU**: once per kernel, after a cell held to the room's cores per learner for over 2 s.

Each notice is said once: a count already said is remembered in the learner's home.

Example:
    >>> count("nr_periods 12\\nnr_throttled 3\\nthrottled_time 2500000000\\n", "throttled_time")
    2500000000
    >>> count("max 7\\n", "max")
    7
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

THROTTLE_SAY_S = 2.0
FULL = (errno.ENOSPC, errno.EDQUOT)


def count(text: str, key: str) -> int:
    """The number after ``key`` in a cgroup counters file (``memory.events``, ``pids.events``, ``cpu.stat``)."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def _read(variable: str, key: str) -> int:
    path = Path(os.environ.get(variable, ""))
    try:
        return count(path.read_text(), key) if path.is_file() else 0
    except (OSError, ValueError):
        return 0


def memory_kills() -> int:
    return _read("LLMINSPECT_ROOM_OOM_FILE", "oom_kill")


def refused_processes() -> int:
    return _read("LLMINSPECT_ROOM_PIDS_FILE", "max")


def throttled_s() -> float:
    path = os.environ.get("LLMINSPECT_ROOM_CPU_FILE", "")
    if path.endswith("cpu.stat") and "/cpu/" in path:  # cgroup v1: nanoseconds
        return _read("LLMINSPECT_ROOM_CPU_FILE", "throttled_time") / 1e9
    return _read("LLMINSPECT_ROOM_CPU_FILE", "throttled_usec") / 1e6


def _limit(variable: str) -> str:
    return os.environ.get(variable, "?")


def memory_text() -> str:
    return (f"Your previous kernel was stopped: it used more than this room's {_limit('LLMINSPECT_ROOM_MEMORY_MIB')} "
            "MiB per learner. Your notebook is safe; this is a fresh kernel, so run the cells above again. To use "
            "less memory, load one model at a time, use shorter texts, or ask the instructor.")  # fmt: skip


def processes_text() -> str:
    return (f"This cell tried to run more than this room's {_limit('LLMINSPECT_ROOM_PROCESSES')} processes and "
            "threads per learner; the extra ones were refused ('Resource temporarily unavailable'). Stop what "
            "you started (Kernel > Shut Down All Kernels), then run your cells again with fewer at once.")  # fmt: skip


def disk_text() -> str:
    return (f"Your home is full: this room gives each learner {_limit('LLMINSPECT_ROOM_DISK_MIB')} MiB, your /tmp "
            "included. Delete files you do not need (the file browser, or `du -sh ~/* ~/.tmp` in a terminal), "
            "then save your notebook again.")  # fmt: skip


def cpu_text(seconds: float) -> str:
    return (f"This cell was slowed down for {seconds:.0f} s: the room gives each learner at most "
            f"{_limit('LLMINSPECT_ROOM_CPU')} core(s) so the class shares the machine. Nothing is wrong; "
            "it just takes longer.")  # fmt: skip


class Seen:
    """Counts already said, kept in the learner's home so two kernels say a thing once."""

    def __init__(self, home: Path):
        self.folder = home / ".llminspect"

    def get(self, what: str) -> int:
        try:
            return int((self.folder / f"room-{what}-seen").read_text() or 0)
        except (OSError, ValueError):
            return 0

    def set(self, what: str, value: int) -> None:
        try:
            self.folder.mkdir(exist_ok=True)
            (self.folder / f"room-{what}-seen").write_text(str(value))
        except OSError:
            pass  # a full home must not stop the notice that says so


class Watch:
    """The hooks one kernel runs around each cell."""

    def __init__(self, shell, home: Path):
        self.shell, self.seen = shell, Seen(home)
        self.throttled_before, self.said_cpu = 0.0, False
        self.memory_pending = memory_kills() > self.seen.get("memory")  # only a fresh kernel says the last one died

    def before(self, *_) -> None:
        if self.memory_pending:
            self.memory_pending = False
            if (kills := memory_kills()) > self.seen.get("memory"):  # another kernel may have said it already
                self.seen.set("memory", kills)
                print(memory_text())
        self.throttled_before = throttled_s()

    def after(self, result) -> None:
        if (refused := refused_processes()) > self.seen.get("processes"):
            self.seen.set("processes", refused)
            print(processes_text())
        error = getattr(result, "error_in_exec", None)
        if isinstance(error, OSError) and error.errno in FULL:
            print(disk_text())
        held = throttled_s() - self.throttled_before
        if held > THROTTLE_SAY_S and not self.said_cpu:
            self.said_cpu = True
            print(cpu_text(held))


def watch(shell, home: Path | None = None) -> Watch:
    """Register the room's notices on an IPython ``shell``; returns the watcher."""
    watcher = Watch(shell, home or Path.home())
    shell.events.register("pre_run_cell", watcher.before)
    shell.events.register("post_run_cell", watcher.after)
    return watcher
