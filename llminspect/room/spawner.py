"""Starting a learner's server: as their own system account, inside their memory limit, in the
room's environment, with their home prepared (``room.learners``).

``RoomSpawner`` is JupyterHub's ``LocalProcessSpawner`` (one UNIX user per learner, needs root).
``SharedAccountSpawner`` runs everyone as the instructor's user — learners can then read each
other's files, so the room uses it only when the instructor asks for it explicitly.

Example:
    >>> RoomSpawner.plan_file.help
    "The room's plan.json"
"""

from __future__ import annotations

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner
from traitlets import Unicode

from llminspect.room.memory import MemoryGroup, limit_group
from llminspect.room.plan import RoomPlan


class _InRoom:
    """What both spawners share: the plan, the command, the environment and the memory group."""

    group: MemoryGroup | None = None

    @property
    def plan(self) -> RoomPlan:
        return RoomPlan.load(self.plan_file)

    async def start(self):
        plan = self.plan
        python = str(plan.python)
        self.cmd = [python, "-m", "llminspect.room.learners", str(plan.lessons), python, "-m", "jupyterhub.singleuser"]
        self.group = limit_group(self.user.name, plan.memory_limit_mib)
        if self.group is None:
            self.log.warning("No memory limit for %s: this machine gives no writable memory cgroup", self.user.name)
        return await super().start()

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.update(self.plan.learner_env())
        if self.group is not None:
            env["LLMINSPECT_ROOM_OOM_FILE"] = str(self.group.events_file)
        return env

    def make_preexec_fn(self, name: str):
        become_learner, group = super().make_preexec_fn(name), self.group

        def preexec() -> None:
            if group is not None:
                group.enter()  # while still root: the group's files belong to root
            become_learner()

        return preexec


class RoomSpawner(_InRoom, LocalProcessSpawner):
    """One system account per learner (JupyterHub's ``LocalProcessSpawner``)."""

    plan_file = Unicode(config=True, help="The room's plan.json")


class SharedAccountSpawner(_InRoom, SimpleLocalProcessSpawner):
    """Every learner as the instructor's own user: no separation (asked for explicitly only)."""

    plan_file = Unicode(config=True, help="The room's plan.json")
