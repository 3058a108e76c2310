"""Learners' names, their personal passwords, and one system account each.

A learner signs in with a name, a password they choose at their first sign-in, and the class
code. The name is *claimed* by that password (a salted scrypt hash in the room's root-only state
folder), so nobody else who knows the class code can sign in under it. Each name becomes a
system account in the ``llminspect`` group with a private home (mode 700) under the room: the
kernels of two learners run as two UNIX users and cannot read each other's files. A name the
machine already uses for something else (``root``, ``daemon``, the instructor's own account) is
refused, never reused.

Example:
    >>> learner_name("  Ada Lovelace ")
    'ada-lovelace'
    >>> learner_name("root; rm -rf /")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    llminspect.room.accounts.NameRefused: Use 2-24 letters, digits or '-' for your name, ...
"""

from __future__ import annotations

import grp
import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
from pathlib import Path

from llminspect.room.plan import LEARNERS_GROUP, RoomPlan

NAME = re.compile(r"^[a-z][a-z0-9-]{1,23}$")
MIN_PASSWORD = 4


class NameRefused(ValueError):
    """A sign-in the room refuses; the message is shown to the learner as it is."""


def learner_name(typed: str) -> str:
    """The account name for what a learner typed: lower case, spaces as '-'."""
    name = re.sub(r"\s+", "-", typed.strip().lower())
    if not NAME.match(name):
        raise NameRefused("Use 2-24 letters, digits or '-' for your name, starting with a letter (e.g. ada-l).")
    return name


def _hash(password: str, salt: bytes) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1).hex()


class Claims:
    """Which password owns which name, kept in one root-only JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, str]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def check_or_claim(self, name: str, password: str) -> None:
        """Accept the owner of ``name``, claim a free name, refuse anyone else."""
        claims = self._read()
        if name in claims:
            salt = bytes.fromhex(claims[name]["salt"])
            if not hmac.compare_digest(claims[name]["hash"], _hash(password, salt)):
                raise NameRefused(f"'{name}' is already taken. If it is yours, type the password you chose "
                                  "the first time; otherwise pick another name.")  # fmt: skip
            return
        if len(password) < MIN_PASSWORD:
            raise NameRefused(f"Choose a password of at least {MIN_PASSWORD} characters: "
                              "you will type it again to come back to your work.")  # fmt: skip
        salt = secrets.token_bytes(16)
        claims[name] = {"salt": salt.hex(), "hash": _hash(password, salt)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(claims))
        temporary.chmod(0o600)
        temporary.replace(self.path)

    def names(self) -> list[str]:
        return sorted(self._read())


def _group_id() -> int | None:
    try:
        return grp.getgrnam(LEARNERS_GROUP).gr_gid
    except KeyError:
        return None


def is_room_account(name: str) -> bool:
    """True if ``name`` is a system account this room created."""
    try:
        return pwd.getpwnam(name).pw_gid == _group_id()
    except KeyError:
        return False


def check_free(name: str) -> None:
    """Refuse a name the machine already uses for an account the room did not create."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    if not is_room_account(name):
        raise NameRefused(f"'{name}' is a name this computer already uses; pick another.")


def home(plan: RoomPlan, name: str) -> Path:
    return plan.homes / name


def create_account(plan: RoomPlan, name: str) -> None:
    """A system account for ``name`` with a private home under the room (needs root)."""
    if _group_id() is None:
        subprocess.run(["groupadd", "--system", LEARNERS_GROUP], check=True)
    plan.homes.mkdir(parents=True, exist_ok=True)
    plan.homes.chmod(0o711)  # learners pass through to their own home but cannot list the others
    folder = home(plan, name)
    subprocess.run(["useradd", "--gid", LEARNERS_GROUP, "--home-dir", str(folder), "--create-home",
                    "--shell", "/bin/bash", "--comment", "llminspect learner", name], check=True)  # fmt: skip
    folder.chmod(0o700)


def _room_accounts() -> list[pwd.struct_passwd]:
    gid = _group_id()
    return [entry for entry in pwd.getpwall() if gid is not None and entry.pw_gid == gid]


def remove_accounts(plan: RoomPlan) -> list[str]:
    """Delete every account this room created, their homes and the name claims."""
    gid = _group_id()
    removed = [entry.pw_name for entry in _room_accounts()]
    for name in removed:
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(home(plan, name), ignore_errors=True)
    if gid is not None:
        subprocess.run(["groupdel", LEARNERS_GROUP], check=False)
    (plan.state / "claims.json").unlink(missing_ok=True)
    return removed


def processes_of(uids: set[int]) -> list[int]:
    """Every running process owned by one of ``uids``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid in uids:
                found.append(int(entry.name))
        except OSError:  # ended while we looked
            pass
    return found


def room_processes() -> list[int]:
    """Every running process of an account this room created."""
    return processes_of({entry.pw_uid for entry in _room_accounts()})


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
