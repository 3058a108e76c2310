"""The JupyterHub configuration of a room, from its plan.

``write_config`` writes a two-line ``jupyterhub_config.py`` beside the plan; JupyterHub runs it,
and :func:`configure` turns the plan into JupyterHub's settings: the class-code sign-in, one
system account and limits per learner, the room's environment and lessons, the idle culler, the
class page (``room.classpage``), the proxy, and JupyterLab with its calls home switched off.

Example:
    >>> from traitlets.config import Config
    >>> c = Config()
    >>> configure(c, RoomPlan.new(Path("/srv/room"), class_code="owl-42", port=8123))
    >>> c.JupyterHub.bind_url, c.Authenticator.otp_prompt
    ('http://127.0.0.1:8123/', 'Class code (on the board):')
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from llminspect.room.plan import RoomPlan
from llminspect.room.ports import server_port

PROXY = "configurable-http-proxy"
FIRST_LESSON = "00_start_here.ipynb"
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
# the class page reads who is in the room and asks each learner's server which notebook is open
CLASS_SCOPES = ["list:users", "read:users", "read:servers", "access:servers"]
CLASS_PAGE = "/services/class/"
SERVICE_PORTS = 19000  # the class page listens on the first free port from here (below the ephemeral range)
# JupyterLab in a room: no news, no update checks, no extension installs, the lessons open first
LAB_ARGS = ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly"]  # fmt: skip
ANNOUNCEMENT = ("Type your name, a password you choose (you will need it to come back), "
                "and the class code on the board.")  # fmt: skip


def find_proxy() -> Path | None:
    """configurable-http-proxy: the project's (``make room`` installs it beside the venv) or on PATH."""
    beside = Path(sys.prefix) / "chp" / "node_modules" / ".bin" / PROXY
    found = beside if beside.exists() else shutil.which(PROXY)
    return Path(found) if found else None


def landing(handler) -> str:
    """Where a user lands after signing in: the instructor on the class page, a learner on their server."""
    user = handler.current_user
    return CLASS_PAGE if user is not None and user.admin else ""


def services(plan: RoomPlan, plan_file: str) -> tuple[list[dict], list[dict]]:
    """The idle culler and the class page, with their roles."""
    port = server_port(SERVICE_PORTS, set())
    return [
        {"name": "idle-culler",
         "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={plan.idle_timeout_s}"]},
        {"name": "class", "url": f"http://127.0.0.1:{port}", "display": True, "oauth_no_confirm": True,
         "command": [sys.executable, "-m", "llminspect.room.classpage", plan_file]},
    ], [{"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]},
        {"name": "class-page", "scopes": CLASS_SCOPES, "services": ["class"]}]  # fmt: skip


def configure(c, plan: RoomPlan | Path | str) -> None:
    """Set JupyterHub's configuration object ``c`` from a plan (or the path of its plan.json)."""
    if not isinstance(plan, RoomPlan):
        plan_file, plan = str(plan), RoomPlan.load(Path(plan))
    else:
        plan_file = str(plan.plan_file)
    c.JupyterHub.bind_url = plan.url
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.db_url = f"sqlite:///{plan.state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(plan.state / "jupyterhub_cookie_secret")
    c.JupyterHub.cleanup_servers = True  # Ctrl-C on the hub stops every learner's server
    c.JupyterHub.template_vars = {"announcement_login": ANNOUNCEMENT}

    c.JupyterHub.authenticator_class = "llminspect.room.authenticator.ClassCodeAuthenticator"
    c.ClassCodeAuthenticator.plan_file = plan_file
    c.ClassCodeAuthenticator.create_system_users = not plan.shared_account
    c.Authenticator.allow_all = True  # the class code is the gate
    c.Authenticator.admin_users = {plan.admin}
    c.Authenticator.request_otp = True
    c.Authenticator.otp_prompt = "Class code (on the board):"

    spawner = "SharedAccountSpawner" if plan.shared_account else "RoomSpawner"
    c.JupyterHub.spawner_class = f"llminspect.room.spawner.{spawner}"
    c[spawner].plan_file = plan_file
    c.SimpleLocalProcessSpawner.home_dir_template = str(plan.homes / "{username}")
    c.Spawner.args = LAB_ARGS
    c.Spawner.default_url = f"/lab/tree/lessons/{FIRST_LESSON}"
    c.Spawner.mem_limit = f"{plan.memory_limit_mib}M"
    c.Spawner.start_timeout = 180  # a room of learners starting at once on a small box
    c.Spawner.http_timeout = 180

    c.JupyterHub.default_url = landing
    c.JupyterHub.services, c.JupyterHub.load_roles = services(plan, plan_file)
    c.ConfigurableHTTPProxy.command = [str(find_proxy() or PROXY)]
    c.ConfigurableHTTPProxy.pid_file = str(plan.state / "proxy.pid")


def write_config(plan: RoomPlan) -> Path:
    """Save the plan and a ``jupyterhub_config.py`` that applies it; returns the config's path."""
    plan.save()
    path = plan.state / "jupyterhub_config.py"
    path.write_text("# Written by `llminspect room`; the choices are in plan.json beside it.\n"
                    f"from llminspect.room.hub import configure\n\nconfigure(c, {str(plan.plan_file)!r})\n")
    return path
