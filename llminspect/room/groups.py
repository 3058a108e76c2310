"""Processes and CPU per learner (the kernel's pids and cpu controllers), beside the memory group
of ``room.memory``, and the room's own group above every learner's.

Each learner's server starts inside ``llminspect-room/NAME`` of every controller: ``pids.max``
stops a fork bomb at ``processes_per_learner`` (a fork then fails with "Resource temporarily
unavailable"); the cpu quota holds one learner to ``cpu_per_learner`` cores and equal weights
split a busy box evenly between learners. The room's group caps all learners' memory together
below the machine's, and weighs for the scheduler as much as one busy process per core: however
many processes the class runs, the hub (one process) keeps at least 1/(cores + 1) of the machine.
cgroup v1 and v2 are both handled; a controller the machine does not offer is skipped and the
banner says so.

Example:
    >>> settings("cpu", 1, quota_us=50_000, processes=256)
    {'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '50000', 'cpu.shares': '1024'}
    >>> settings("cpu", 2, quota_us=50_000, processes=256)
    {'cpu.max': '50000 100000', 'cpu.weight': '100'}
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from llminspect.room.limits import CPU_PERIOD_US, Limits
from llminspect.room.memory import CGROUPS, ROOM_GROUP

CONTROLLERS = ("memory", "pids", "cpu")


def settings(controller: str, version: int, quota_us: int, processes: int) -> dict[str, str]:
    """The files (and values) that give one learner their share of ``controller``."""
    if controller == "pids":
        return {"pids.max": str(processes)}
    if version == 1:
        return {"cpu.cfs_period_us": str(CPU_PERIOD_US), "cpu.cfs_quota_us": str(quota_us), "cpu.shares": "1024"}
    return {"cpu.max": f"{quota_us} {CPU_PERIOD_US}", "cpu.weight": "100"}


@dataclass(frozen=True)
class Group:
    """One folder of one controller's hierarchy."""

    controller: str
    path: Path
    version: int

    def enter(self, pid: int = 0) -> None:
        (self.path / "cgroup.procs").write_text(str(pid or os.getpid()))

    def write(self, settings_: dict[str, str]) -> None:
        for name, value in settings_.items():
            (self.path / name).write_text(value)

    @property
    def events_file(self) -> Path:
        """What a learner's kernel reads to say a limit was met: refused forks, or throttled time."""
        return self.path / ("pids.events" if self.controller == "pids" else "cpu.stat")


def _own(controller: str) -> tuple[int, Path] | None:
    """This process's folder in the hierarchy that holds ``controller``."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, relative = line.split(":", 2)
        if controller in names.split(","):
            return 1, CGROUPS / controller / relative.lstrip("/")
        if names == "":
            root = CGROUPS / "unified" if (CGROUPS / "unified" / "cgroup.procs").exists() else CGROUPS
            offered = root / "cgroup.controllers"
            if offered.exists() and controller in offered.read_text().split():
                return 2, root / relative.lstrip("/")
    return None


def room_group(controller: str) -> Group | None:
    """The room's group of ``controller`` (made if missing), or ``None`` where it cannot be written."""
    found = _own(controller)
    if found is None:
        return None
    version, own = found
    try:
        (own / ROOM_GROUP).mkdir(exist_ok=True)
        if version == 2:
            for folder in (own, own / ROOM_GROUP):
                (folder / "cgroup.subtree_control").write_text(f"+{controller}")
        return Group(controller, own / ROOM_GROUP, version)
    except OSError:
        return None


def limit_learner(name: str, limits: Limits) -> list[Group]:
    """``name``'s pids and cpu groups with their limits (those this machine offers)."""
    made = []
    for controller in ("pids", "cpu"):
        parent = room_group(controller)
        if parent is None:
            continue
        try:
            group = Group(controller, parent.path / name, parent.version)
            group.path.mkdir(exist_ok=True)
            group.write(settings(controller, parent.version, limits.cpu_quota_us, limits.processes))
            made.append(group)
        except OSError:
            continue
    return made


def cap_room(limits: Limits) -> list[str]:
    """Cap all learners together (memory below the machine's; CPU weighed as one group); returns the controllers set."""
    capped, cores = [], max(1, len(os.sched_getaffinity(0)))
    for controller in CONTROLLERS:
        group = room_group(controller)
        if group is None:
            continue
        if controller == "memory":
            name = "memory.limit_in_bytes" if group.version == 1 else "memory.max"
            values = {name: str(limits.room_memory_mib * 2**20)}
        else:  # the class weighs as much as one busy process per core: the hub still gets 1/(cores + 1) at worst
            values = {"cpu.shares": str(1024 * cores)} if group.version == 1 else {"cpu.weight": str(100 * cores)}
        with contextlib.suppress(OSError):
            if controller != "pids":
                group.write(values)
            capped.append(controller)
    return capped


def remove_all() -> None:
    """Remove every learner's empty group and the room's own, in every controller (after the hub stopped)."""
    for controller in CONTROLLERS:
        found = _own(controller)
        parent = found[1] / ROOM_GROUP if found else None
        if parent is None or not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()
