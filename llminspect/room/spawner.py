"""Starting a learner's server: as their own system account, inside their limits (memory, processes,
CPU, a home of its own size with a private /tmp), in the room's environment, with their home
prepared (``room.learners``), on a port no other start can take (``room.ports``), retried and said
on the learner's start page if it fails.

``RoomSpawner`` is JupyterHub's ``LocalProcessSpawner`` (one UNIX user per learner, needs root).
``SharedAccountSpawner`` runs everyone as the instructor's user — learners can then read each
other's files, so the room uses it only when the instructor asks for it explicitly. The
instructor (the admin) has no server: their pages are the class page and JupyterHub's admin page.

Example:
    >>> RoomSpawner.plan_file.help
    "The room's plan.json"
"""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner
from traitlets import Unicode

from llminspect.room import disks, groups, ports
from llminspect.room.hub import CLASS_PAGE
from llminspect.room.limits import Machine, limits_for
from llminspect.room.memory import MemoryGroup, limit_group
from llminspect.room.plan import RoomPlan


class NoServerForInstructor(Exception):
    jupyterhub_message = (f"The instructor has no server in this room: your pages are the class page ({CLASS_PAGE}) "
                          "and the admin page (/hub/admin). To try a lesson as a learner, sign in under a learner "
                          "name in a private window.")  # fmt: skip


class _InRoom:
    """What both spawners share: the plan, the command, the environment, the limits and the port."""

    group: MemoryGroup | None = None
    others: ClassVar[list] = []
    promised: ClassVar[dict[str, int]] = {}  # ports given to servers of this hub, by learner

    @property
    def plan(self) -> RoomPlan:
        return RoomPlan.load(self.plan_file)

    def _limit(self, plan: RoomPlan) -> None:
        limits = limits_for(plan, Machine.here(plan.root))
        self.group = limit_group(self.user.name, limits.memory_mib)
        if self.group is None:
            self.log.warning("No memory limit for %s: this machine gives no writable memory cgroup", self.user.name)
        self.others = groups.limit_learner(self.user.name, limits)

    async def start(self):
        plan = self.plan
        if self.user.name == plan.admin:
            raise NoServerForInstructor()
        python = str(plan.python)
        self.cmd = [python, "-m", "llminspect.room.learners", str(plan.lessons), python, "-m", "jupyterhub.singleuser"]
        self._limit(plan)
        if not plan.shared_account:
            await asyncio.to_thread(disks.mount_home, plan, self.user.name)
        self.said: list[str] = []
        return await ports.start_listening(self._launch, lambda: self._port(plan), lambda: self.proc, self.said.append)

    async def _launch(self, port: int) -> tuple[str, int]:
        self.port = self.promised[self.user.name] = port
        return await super().start()

    def _port(self, plan: RoomPlan) -> int:
        taken = {port for name, port in self.promised.items() if name != self.user.name}
        return ports.server_port(plan.first_server_port, taken)

    async def progress(self):
        sent = 0
        while True:  # JupyterHub stops reading when the start ends
            for message in getattr(self, "said", [])[sent:]:
                sent += 1
                yield {"progress": 50, "message": message}
            await asyncio.sleep(0.5)

    async def stop(self, now: bool = False):
        self.promised.pop(self.user.name, None)
        return await super().stop(now=now)

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.update(self.plan.learner_env())
        if self.group is not None:
            env["LLMINSPECT_ROOM_OOM_FILE"] = str(self.group.events_file)
        for group in self.others:
            env[f"LLMINSPECT_ROOM_{group.controller.upper()}_FILE"] = str(group.events_file)
        return env

    def make_preexec_fn(self, name: str):
        become_learner = super().make_preexec_fn(name)
        entered = [group for group in (self.group, *self.others) if group is not None]
        plan = self.plan
        private = not plan.shared_account and os.geteuid() == 0
        home = plan.homes / name

        def preexec() -> None:
            for group in entered:
                group.enter()  # while still root: the groups' files belong to root
            if private:
                disks.private_tmp(home)
            become_learner()

        return preexec


class RoomSpawner(_InRoom, LocalProcessSpawner):
    """One system account per learner (JupyterHub's ``LocalProcessSpawner``)."""

    plan_file = Unicode(config=True, help="The room's plan.json")


class SharedAccountSpawner(_InRoom, SimpleLocalProcessSpawner):
    """Every learner as the instructor's own user: no separation (asked for explicitly only)."""

    plan_file = Unicode(config=True, help="The room's plan.json")
