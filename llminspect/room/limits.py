"""What bounds each learner, computed from the room's plan and this machine.

Every learner gets the same: a memory limit, a number of processes and threads, at most
``cpu_per_learner`` cores (and an equal share of the cores when the box is busy), a home of
``disk_mib`` that holds their /tmp too. The instructor and the hub keep a reserve that no learner
can take: the learners' memory together is capped below the machine's by ``reserve_memory_mib``;
the whole class weighs, for the CPU scheduler, as much as one busy process per core, so the hub is
served however many processes the class runs; and no new learner joins
once the disk could fall below ``reserve_disk_mib`` (``room.disks``).

Example:
    >>> plan = RoomPlan.new(Path("/srv/room"), class_code="owl-fox-427")
    >>> room = limits_for(plan, Machine(cores=2, memory_mib=24_000, disk_free_mib=75_000))
    >>> room.memory_mib, room.room_memory_mib, room.processes, room.cpu_quota_us, room.learners_on_disk
    (3072, 22976, 256, 100000, 34)
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from llminspect.errors import LLMInspectError
from llminspect.room.plan import RoomPlan

CPU_PERIOD_US = 100_000  # the scheduler's accounting period: quota / period = cores
MIN_MEMORY_MIB = 512  # below this a kernel cannot even import the lessons' libraries
MIN_PROCESSES = 64  # a server, a kernel and their threads


class LimitError(LLMInspectError):
    """A room's limits this machine cannot give."""


@dataclass(frozen=True)
class Machine:
    """What this machine has: cores, memory, free disk under the room."""

    cores: float
    memory_mib: int
    disk_free_mib: int

    @classmethod
    def here(cls, folder: Path) -> Machine:
        """This machine, its disk measured at ``folder`` (or its first existing parent)."""
        while not folder.exists():
            folder = folder.parent
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        return cls(len(os.sched_getaffinity(0)), memory, shutil.disk_usage(folder).free // 2**20)


@dataclass(frozen=True)
class Limits:
    """The numbers the machine's cgroups and disks get."""

    memory_mib: int  # per learner
    room_memory_mib: int  # all learners together
    processes: int  # per learner (processes and threads)
    cpu_cores: float  # per learner, at most
    cpu_quota_us: int  # cpu_cores as the scheduler's quota per CPU_PERIOD_US
    disk_mib: int  # per learner
    learners_on_disk: int  # how many homes fit above the disk reserve, if every one were full


def limits_for(plan: RoomPlan, machine: Machine) -> Limits:
    """The room's limits on ``machine``; refuses choices the machine cannot give, saying which option to change."""
    room_memory = machine.memory_mib - plan.reserve_memory_mib
    if room_memory < MIN_MEMORY_MIB:
        raise LimitError(f"This machine has {machine.memory_mib} MiB of memory and the room keeps "
                         f"{plan.reserve_memory_mib} MiB for the hub and you: lower --reserve-memory.")  # fmt: skip
    if plan.processes_per_learner < MIN_PROCESSES:
        raise LimitError(f"{plan.processes_per_learner} processes per learner cannot run a server and a kernel: "
                         f"use --processes {MIN_PROCESSES} or more.")  # fmt: skip
    if plan.cpu_per_learner <= 0:
        raise LimitError("--cpu is the cores each learner may use at most: give a number above 0, e.g. 1.")
    if plan.disk_mib < 256:
        raise LimitError("--disk is each learner's home in MiB (lessons, notebooks, /tmp): give 256 or more.")
    cores = min(plan.cpu_per_learner, machine.cores)
    fit = max(0, (machine.disk_free_mib - plan.reserve_disk_mib) // plan.disk_mib)
    return Limits(memory_mib=min(plan.memory_limit_mib, room_memory), room_memory_mib=room_memory,
                  processes=plan.processes_per_learner, cpu_cores=cores, cpu_quota_us=int(cores * CPU_PERIOD_US),
                  disk_mib=plan.disk_mib,
                  learners_on_disk=fit)  # fmt: skip


def describe(limits: Limits) -> str:
    """One line for the room's banner.

    Example:
        >>> describe(Limits(3072, 22976, 256, 1.0, 100000, 2048, 34))
        '3072 MiB, 256 processes, 1 core, a 2048 MiB home each (34 fit on the disk); the hub keeps the rest'
    """
    core = f"{limits.cpu_cores:g} core" + ("s" if limits.cpu_cores != 1 else "")
    return (f"{limits.memory_mib} MiB, {limits.processes} processes, {core}, a {limits.disk_mib} MiB home each "
            f"({limits.learners_on_disk} fit on the disk); the hub keeps the rest")  # fmt: skip
