"""Signing in to a room: a name, a password the learner chooses, and the class code on the board.

JupyterHub's own login form asks for the class code through its one-time-code field
(``request_otp``), so the page is JupyterHub's, unchanged; a refusal is said on the form. The
instructor signs in as the admin with the password the room printed; learners cannot use that
name, and the instructor gets no system account and no server (the class page and the admin page
are theirs). Failed sign-ins are limited per address and per name (``room.lockout``), and the
password hash (scrypt, ~50 ms of CPU) runs in a small thread pool, never on the hub's event loop.

Why not NativeAuthenticator (1.3.0): its lockout counts failures per existing user name only, so
a guesser of the class code with a fresh name each try is never counted, and a locked user is
told only "Invalid username or password"; its bcrypt check runs on the event loop; and it
replaces the room's one-form sign-in with a sign-up page and admin approval.

Example:
    >>> ClassCodeAuthenticator.create_system_users.default_value
    False
    >>> from types import SimpleNamespace
    >>> client_address(SimpleNamespace(headers={"X-Forwarded-For": "6.6.6.6, 10.0.0.7"}, remote_ip="127.0.0.1"))
    '10.0.0.7'
"""

from __future__ import annotations

import asyncio
import hmac
from concurrent.futures import ThreadPoolExecutor

from jupyterhub.auth import LocalAuthenticator
from tornado import web
from traitlets import Unicode

from llminspect.room import accounts, disks
from llminspect.room.lockout import Lockout
from llminspect.room.plan import RoomPlan

HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="room-hash")  # scrypt takes 16 MiB each


def client_address(request) -> str:
    """The address a sign-in came from: the last X-Forwarded-For entry, which the room's proxy appends
    (a client's own X-Forwarded-For or X-Real-Ip cannot hide it), else the connection's own peer."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    context = getattr(getattr(request, "connection", None), "context", None)
    peer = getattr(context, "address", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(request.remote_ip)


def refuse(status: int, message: str) -> web.HTTPError:
    """A refusal JupyterHub's login form shows as it is."""
    return web.HTTPError(status, message.replace("%", "%%"))


class ClassCodeAuthenticator(LocalAuthenticator):
    """Name + own password + class code; one system account per name (see ``room.accounts``)."""

    plan_file = Unicode(config=True, help="The room's plan.json")
    _lockout: Lockout | None = None

    @property
    def plan(self) -> RoomPlan:
        return RoomPlan.load(self.plan_file)

    def lockout(self, plan: RoomPlan) -> Lockout:
        if self._lockout is None:
            self._lockout = Lockout(plan.sign_in_failures_per_address, plan.sign_in_failures_per_name,
                                    plan.sign_in_window_s)  # fmt: skip
        return self._lockout

    async def authenticate(self, handler, data: dict) -> str | None:
        plan = self.plan
        address, password = client_address(handler.request), data.get("password", "")
        try:
            name = accounts.learner_name(data.get("username", ""))
        except accounts.NameRefused as refusal:
            raise refuse(403, str(refusal)) from None
        rules = self.lockout(plan)
        if (locked := rules.refusal(address, "" if name == plan.admin else name)) is not None:
            self.log.warning("Sign-in for %s from %s refused: locked out", name, address)
            raise refuse(429, locked)
        if name == plan.admin:  # never locked by name: its password is random, and a lock would shut out the class
            if hmac.compare_digest(password, plan.admin_password):
                return name
            rules.fail(address)
            return None
        if not hmac.compare_digest(data.get("otp", "").strip().lower(), plan.class_code.lower()):
            rules.fail(address)
            raise refuse(403, "That is not this room's class code: copy it from the board.")
        return await self._learner(plan, rules, address, name, password)

    async def _learner(self, plan: RoomPlan, rules: Lockout, address: str, name: str, password: str) -> str:
        try:
            if not plan.shared_account:
                accounts.check_free(name)
                if not accounts.is_room_account(name) and (full := disks.room_full(plan)) is not None:
                    raise accounts.NameRefused(full)
            claims = accounts.Claims(plan.state / "claims.json")
            await asyncio.get_running_loop().run_in_executor(HASHING, claims.check_or_claim, name, password)
        except accounts.WrongPassword as refusal:
            rules.fail(address, name)
            raise refuse(403, str(refusal)) from None
        except accounts.NameRefused as refusal:
            raise refuse(403, str(refusal)) from None
        rules.succeed(name)
        return name

    def system_user_exists(self, user) -> bool:
        plan = self.plan
        return plan.shared_account or user.name == plan.admin or super().system_user_exists(user)

    def add_system_user(self, user) -> None:
        accounts.create_account(self.plan, user.name)
