"""Signing in to a room: a name, a password the learner chooses, and the class code on the board.

JupyterHub's own login form asks for the class code through its one-time-code field
(``request_otp``), so the page is JupyterHub's, unchanged. The instructor signs in as the admin
with the password the room printed; learners cannot use that name.

Example:
    >>> ClassCodeAuthenticator.create_system_users.default_value
    False
"""

from __future__ import annotations

import hmac

from jupyterhub.auth import LocalAuthenticator
from tornado import web
from traitlets import Unicode

from llminspect.room import accounts
from llminspect.room.plan import RoomPlan


class ClassCodeAuthenticator(LocalAuthenticator):
    """Name + own password + class code; one system account per name (see ``room.accounts``)."""

    plan_file = Unicode(config=True, help="The room's plan.json")

    @property
    def plan(self) -> RoomPlan:
        return RoomPlan.load(self.plan_file)

    def authenticate(self, handler, data: dict) -> str | None:
        plan = self.plan
        try:
            name = accounts.learner_name(data.get("username", ""))
            password = data.get("password", "")
            if name == plan.admin:
                return name if hmac.compare_digest(password, plan.admin_password) else None
            if not hmac.compare_digest(data.get("otp", "").strip().lower(), plan.class_code.lower()):
                raise accounts.NameRefused("That is not this room's class code: copy it from the board.")
            if not plan.shared_account:
                accounts.check_free(name)
            accounts.Claims(plan.state / "claims.json").check_or_claim(name, password)
        except accounts.NameRefused as refusal:
            raise web.HTTPError(403, str(refusal).replace("%", "%%")) from None
        return name

    def system_user_exists(self, user) -> bool:
        return self.plan.shared_account or super().system_user_exists(user)

    def add_system_user(self, user) -> None:
        accounts.create_account(self.plan, user.name)
