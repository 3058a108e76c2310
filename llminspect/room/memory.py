"""A memory limit per learner (a cgroup of the kernel's memory controller), and telling them.

Each learner's server, and so their kernels, starts inside its own group with a hard limit. When
a kernel passes it the kernel's own OOM killer stops that kernel only: the learner's server and
every other learner carry on. JupyterLab then restarts the kernel, and the notice installed in
the learner's IPython profile says, above the next cell they run, what happened and what to do.

cgroup v1 (``memory.limit_in_bytes``) and v2 (``memory.max``) are both handled; where neither
can be written (no root, no delegated controller) :func:`limit_group` returns ``None`` and the
room says it runs without a limit.

Example:
    >>> parse_oom_kills("oom_kill_disable 0\\nunder_oom 0\\noom_kill 3\\n")
    3
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
ROOM_GROUP = "llminspect-room"
NOTICE_NAME = "00-llminspect-room.py"


def parse_oom_kills(text: str) -> int:
    """The ``oom_kill`` count in a ``memory.oom_control`` (v1) or ``memory.events`` (v2) file."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


@dataclass(frozen=True)
class MemoryGroup:
    """One learner's group: ``enter`` moves the calling process into it."""

    path: Path
    version: int

    @property
    def limit_file(self) -> Path:
        return self.path / ("memory.limit_in_bytes" if self.version == 1 else "memory.max")

    @property
    def events_file(self) -> Path:
        return self.path / ("memory.oom_control" if self.version == 1 else "memory.events")

    def enter(self, pid: int = 0) -> None:
        (self.path / "cgroup.procs").write_text(str(pid or os.getpid()))

    def oom_kills(self) -> int:
        return parse_oom_kills(self.events_file.read_text())

    def remove(self) -> None:
        try:
            self.path.rmdir()  # only empty groups can go; a busy one stays until its processes end
        except OSError:
            pass


def _own_group(version: int) -> Path | None:
    """This process's group in the memory hierarchy, as a folder."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, relative = line.split(":", 2)
        if version == 1 and "memory" in controllers.split(","):
            return CGROUPS / "memory" / relative.lstrip("/")
        if version == 2 and controllers == "":
            root = CGROUPS / "unified" if (CGROUPS / "unified" / "cgroup.procs").exists() else CGROUPS
            return root / relative.lstrip("/")
    return None


def _room_parents() -> list[tuple[int, Path]]:
    found = [(version, own / ROOM_GROUP) for version in (1, 2) if (own := _own_group(version)) is not None]
    return [(version, parent) for version, parent in found if parent.parent.exists()]


def limit_group(name: str, limit_mib: int) -> MemoryGroup | None:
    """Create (or reuse) the group ``llminspect-room/NAME`` with a hard limit of ``limit_mib``."""
    for version, parent in _room_parents():
        own = parent.parent
        try:
            parent.mkdir(exist_ok=True)
            if version == 2:
                (own / "cgroup.subtree_control").write_text("+memory")
                (parent / "cgroup.subtree_control").write_text("+memory")
            group = MemoryGroup(parent / name, version)
            group.path.mkdir(exist_ok=True)
            group.limit_file.write_text(str(limit_mib * 2**20))
            return group
        except OSError:
            continue
    return None


def can_limit() -> bool:
    """Whether this machine lets the room give learners a memory limit."""
    probe = limit_group("probe", 1024)
    if probe is not None:
        probe.remove()
    return probe is not None


def remove_groups() -> None:
    """Remove the room's empty groups and then its own (after the hub stopped every server)."""
    for _, parent in _room_parents():
        for child in parent.iterdir() if parent.exists() else ():
            if child.is_dir():
                MemoryGroup(child, 1).remove()
        if parent.exists():
            MemoryGroup(parent, 1).remove()


NOTICE = """\"\"\"llminspect room: say so when this learner meets one of the room's limits.\"\"\"
try:
    from llminspect.room.notices import watch

    watch(get_ipython())
except Exception:
    pass
"""


def install_notice(home: Path) -> Path:
    """Write the room's notices (``room.notices``) into ``home``'s IPython start-up folder; returns its path."""
    folder = home / ".ipython" / "profile_default" / "startup"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NOTICE_NAME
    path.write_text(NOTICE)
    return path
