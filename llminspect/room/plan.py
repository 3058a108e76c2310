"""Every choice a room makes, in one place: where things live, who may enter, what each learner gets.

The hub configuration (``room.hub``), the learner spawner, the accounts and the Zero to
JupyterHub values file (``room.kubernetes``) all read a :class:`RoomPlan`; nothing else decides.

Example:
    >>> plan = RoomPlan.new(Path("/srv/llminspect-room"), class_code="owl-fox-427")
    >>> plan.class_code, plan.lessons, plan.memory_limit_mib, plan.processes_per_learner
    ('owl-fox-427', PosixPath('/srv/llminspect-room/lessons'), 3072, 256)
    >>> len(WORDS) ** 2 * 900  # class codes to guess from, at 10 tries per address per 10 minutes
    921600
    >>> RoomPlan.from_json(plan.to_json()) == plan
    True
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

# words that read well on a board and cannot be confused with each other when spoken
WORDS = ("owl", "fox", "elk", "yak", "bee", "ant", "cod", "emu", "gnu", "jay", "ram", "eel", "cat", "dog", "pig",
         "cow", "hen", "bat", "ape", "wolf", "bear", "lion", "frog", "duck", "goat", "crab", "moth", "seal", "swan",
         "toad", "lynx", "hawk")  # fmt: skip
LEARNERS_GROUP = "llminspect"


def board_code() -> str:
    """A class code short enough to write on a board, ``word-word-NNN``: 921,600 of them, so guessing
    at the sign-in lockout's pace (``room.lockout``) would take months."""
    return f"{secrets.choice(WORDS)}-{secrets.choice(WORDS)}-{secrets.randbelow(900) + 100}"


@dataclass(frozen=True)
class RoomPlan:
    """A room's choices; the folders under ``root`` are what learners' servers read."""

    root: Path
    class_code: str
    admin_password: str
    admin: str = "instructor"
    ip: str = "127.0.0.1"
    port: int = 8000
    memory_limit_mib: int = 3072  # a kernel with the decoder loaded holds ~0.9 GiB
    threads_per_learner: int = 1  # a class shares the cores; one thread each keeps the box responsive
    idle_timeout_s: int = 3600  # a server nobody used for an hour is stopped
    shared_account: bool = False  # every learner as one UNIX user: unsafe, only when asked for
    # what else bounds each learner (room.limits computes the numbers the machine gets)
    processes_per_learner: int = 256  # processes and threads; a learner through lessons 00/03/05 uses ~60
    cpu_per_learner: float = 1.0  # cores at most, even when the box is idle; equal shares when busy
    disk_mib: int = 2048  # a learner's home, their /tmp inside it (a file system of its own)
    reserve_memory_mib: int = 1024  # learners together never take this: the hub and the instructor keep it
    reserve_disk_mib: int = 4096  # no new learner once the room's disk could fall below this
    # sign-in lockout (room.lockout): failures in a sliding window of sign_in_window_s
    sign_in_failures_per_address: int = 10
    sign_in_failures_per_name: int = 20  # more than one address allows: one computer cannot lock a name
    sign_in_window_s: int = 600
    first_server_port: int = 20000  # learners' servers listen from here: below the ephemeral ports

    @classmethod
    def new(cls, root: Path, **choices) -> RoomPlan:
        choices.setdefault("class_code", board_code())
        choices.setdefault("admin_password", secrets.token_urlsafe(9))
        return cls(root=Path(root), **choices)

    # where things live
    @property
    def env(self) -> Path:
        """The Python environment learners' servers and kernels run (a copy of the instructor's)."""
        return self.root / "env"

    @property
    def interpreter(self) -> Path:
        """A copy of the base Python, made only when learners cannot reach the instructor's."""
        return self.root / "python"

    @property
    def python(self) -> Path:
        return self.env / "bin" / "python"

    @property
    def models(self) -> Path:
        """The prepared model cache, shared by every learner, read-only."""
        return self.root / "models"

    @property
    def lessons(self) -> Path:
        """The master copy of the lessons; each learner gets their own copy at first start."""
        return self.root / "lessons"

    @property
    def homes(self) -> Path:
        return self.root / "homes"

    @property
    def disks(self) -> Path:
        """One file system image per learner (their home), root only."""
        return self.root / "disks"

    @property
    def state(self) -> Path:
        """The hub's own files (database, cookie secret, name claims): root only."""
        return self.root / "state"

    @property
    def plan_file(self) -> Path:
        return self.state / "plan.json"

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}/"

    def learner_env(self) -> dict[str, str]:
        """What every learner's server and kernel sees in its environment."""
        threads = str(self.threads_per_learner)
        libraries = {"LD_LIBRARY_PATH": str(self.interpreter / "lib")} if self.interpreter.exists() else {}
        return libraries | {
            "LLMINSPECT_CACHE": str(self.models),
            "LLMINSPECT_ROOM_MEMORY_MIB": str(self.memory_limit_mib),
            "LLMINSPECT_ROOM_PROCESSES": str(self.processes_per_learner),
            "LLMINSPECT_ROOM_CPU": f"{self.cpu_per_learner:g}",
            "LLMINSPECT_ROOM_DISK_MIB": str(self.disk_mib),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OMP_WAIT_POLICY": "PASSIVE",  # torch's threads sleep instead of spinning while a neighbour has the core
        }

    def to_json(self) -> str:
        data = asdict(self)
        data["root"] = str(self.root)
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RoomPlan:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "root": Path(data["root"])})

    def save(self) -> Path:
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o700)
        self.plan_file.write_text(self.to_json())
        self.plan_file.chmod(0o600)
        return self.plan_file

    @classmethod
    def load(cls, path: Path) -> RoomPlan:
        return cls.from_json(Path(path).read_text())

    def with_choices(self, **choices) -> RoomPlan:
        """This plan with some choices changed (``None`` keeps the old one)."""
        return replace(self, **{k: v for k, v in choices.items() if v is not None})
