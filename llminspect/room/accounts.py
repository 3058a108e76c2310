"""Learners' names, their personal passwords, and one system account each.

A learner signs in with a name, a password they choose at their first sign-in, and the class
code. The name is *claimed* by that password (a salted scrypt hash in the room's root-only state
folder), so nobody else who knows the class code can sign in under it. Each name becomes a
system account in the ``llminspect`` group with a private home (mode 700) under the room: the
kernels of two learners run as two UNIX users and cannot read each other's files. ``--forget``
removes the accounts with everything they left (``room.disks``): a uid that ``useradd`` hands to
the next class owns nothing. A name the
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
import threading
from pathlib import Path

from llminspect.room import disks
from llminspect.room.plan import LEARNERS_GROUP, RoomPlan

NAME = re.compile(r"^[a-z][a-z0-9-]{1,23}$")
MIN_PASSWORD = 4


class NameRefused(ValueError):
    """A sign-in the room refuses; the message is shown to the learner as it is."""


class WrongPassword(NameRefused):
    """A claimed name with another password: counted by the sign-in lockout."""


def learner_name(typed: str) -> str:
    """The account name for what a learner typed: lower case, spaces as '-'."""
    name = re.sub(r"\s+", "-", typed.strip().lower())
    if not NAME.match(name):
        raise NameRefused("Use 2-24 letters, digits or '-' for your name, starting with a letter (e.g. ada-l).")
    return name


def _hash(password: str, salt: bytes) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1).hex()


class Claims:
    """Which password owns which name, kept in one root-only JSON file.

    Safe to call from several threads at once (the hub hashes off its event loop): the hash is
    computed outside the lock, the file is read and written inside it.
    """

    _writing = threading.Lock()

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, str]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    @staticmethod
    def _check(claim: dict[str, str], name: str, password: str) -> None:
        if not hmac.compare_digest(claim["hash"], _hash(password, bytes.fromhex(claim["salt"]))):
            raise WrongPassword(f"'{name}' is already taken. If it is yours, type the password you chose "
                                "the first time; otherwise pick another name.")  # fmt: skip

    def check_or_claim(self, name: str, password: str) -> None:
        """Accept the owner of ``name``, claim a free name, refuse anyone else."""
        if name in (claims := self._read()):
            return self._check(claims[name], name, password)
        if len(password) < MIN_PASSWORD:
            raise NameRefused(f"Choose a password of at least {MIN_PASSWORD} characters: "
                              "you will type it again to come back to your work.")  # fmt: skip
        salt = secrets.token_bytes(16)
        claim = {"salt": salt.hex(), "hash": _hash(password, salt)}
        with self._writing:
            claims = self._read()
            if name in claims:  # claimed by someone else while we hashed
                return self._check(claims[name], name, password)
            claims[name] = claim
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(claims))
            temporary.chmod(0o600)
            temporary.replace(self.path)
        return None

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
    """A system account for ``name`` with a private home under the room, a file system of its own
    where the machine allows (``room.disks``; needs root)."""
    if _group_id() is None:
        subprocess.run(["groupadd", "--system", LEARNERS_GROUP], check=True)
    plan.homes.mkdir(parents=True, exist_ok=True)
    plan.homes.chmod(0o711)  # learners pass through to their own home but cannot list the others
    subprocess.run(["useradd", "--gid", LEARNERS_GROUP, "--home-dir", str(home(plan, name)), "--no-create-home",
                    "--shell", "/bin/bash", "--comment", "llminspect learner", name], check=True)  # fmt: skip
    entry = pwd.getpwnam(name)
    disks.make_home(plan, name, entry.pw_uid, entry.pw_gid)


def room_accounts() -> list[pwd.struct_passwd]:
    """The system accounts this room created."""
    gid = _group_id()
    return [entry for entry in pwd.getpwall() if gid is not None and entry.pw_gid == gid]


def room_uids() -> list[int]:
    return [entry.pw_uid for entry in room_accounts()]


def remove_accounts(plan: RoomPlan) -> list[str]:
    """Delete every account this room created with all it left: homes (and their disk images), files
    in the machine's shared writable folders, the name claims. Run after the room stopped."""
    gid = _group_id()
    accounts = room_accounts()
    disks.unmount_homes(plan)
    disks.sweep({entry.pw_uid for entry in accounts})
    for entry in accounts:
        subprocess.run(["userdel", entry.pw_name], check=False)
        shutil.rmtree(home(plan, entry.pw_name), ignore_errors=True)
    disks.remove_images(plan)
    if gid is not None:
        subprocess.run(["groupdel", LEARNERS_GROUP], check=False)
    (plan.state / "claims.json").unlink(missing_ok=True)
    return [entry.pw_name for entry in accounts]


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
    return processes_of({entry.pw_uid for entry in room_accounts()})


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
