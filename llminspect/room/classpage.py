"""The instructor's class page: a JupyterHub service at ``/services/class/``, for the admin only.

Live (it reloads every 10 s): each learner's lesson, which predictions and exercises they have
checked, got right or are stuck on (``room.classview``, from the quiz's own progress file in their
home), a line per lesson of how much of the class has each exercise right, and a link that opens
a learner's notebook read-only. JupyterHub signs the instructor in (OAuth); a learner's token has
no access to this service, and the page also checks the name is the room's admin. The service
runs as the hub's user and reads homes with ``room.homefiles`` (no link followed). A learner's
notebook is learner-written HTML: it is served with ``Content-Security-Policy: sandbox`` and no
script or fetch allowed, so it cannot act in the instructor's session.

Run by the hub (``room.hub``): ``python -m llminspect.room.classpage PLAN.json``.

Example:
    >>> print(chip({"lesson": "03", "exercise": 2, "state": "stuck", "tries": 3, "mistake": "<b>"}))
    <span class='stuck' title='3 tries &lt;b&gt;'>03.2 stuck</span>
"""

from __future__ import annotations

import html
import json
import os
import pwd
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import httpclient, ioloop, web
from tornado.httputil import url_concat

from llminspect.room import classview, homefiles
from llminspect.room.plan import RoomPlan
from llminspect.teaching import progress

PROGRESS = ".llminspect/progress.jsonl"
SANDBOX = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
           "form-action 'none'; base-uri 'none'")  # fmt: skip
STYLE = """body{font:14px sans-serif;margin:16px}table{border-collapse:collapse;margin-bottom:18px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}span{padding:1px 5px;margin:1px;border-radius:3px;
display:inline-block}.right{background:#c8efc8}.stuck{background:#f6c1c1}.trying{background:#f3e6b3}"""


def chip(item: dict) -> str:
    """One exercise of one learner, as a coloured tag."""
    title = html.escape(f"{item['tries']} tries {item.get('mistake', '')}".strip(), quote=True).replace("'", "&#x27;")
    state = html.escape(item["state"])
    label = f"{html.escape(str(item['lesson']))}.{int(item['exercise'])} {state}"
    return f"<span class='{state}' title='{title}'>{label}</span>"


class ClassData:
    """Who is in the room and how they are doing, gathered from the hub, their servers and their homes."""

    def __init__(self, plan: RoomPlan):
        self.plan = plan
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.api = os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api").rstrip("/")
        self.exercises = classview.lesson_exercises(plan.lessons)

    async def _get(self, url: str) -> object:
        reply = await httpclient.AsyncHTTPClient().fetch(url, headers={"Authorization": f"token {self.token}"},
                                                         request_timeout=5, raise_error=False)  # fmt: skip
        return json.loads(reply.body) if reply.code == 200 else None

    async def sessions(self, user: dict) -> list[dict]:
        if not (user.get("servers", {}).get("", {}) or {}).get("ready"):
            return []
        found = await self._get(f"{self.plan.url}user/{user['name']}/api/sessions")
        return [{"path": s.get("path", ""), "last_activity": (s.get("kernel") or {}).get("last_activity", "")}
                for s in found or [] if isinstance(s, dict)]  # fmt: skip

    def lines(self, name: str) -> list[dict]:
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            return []
        text = homefiles.read_learner_file(self.plan.homes / name, PROGRESS, uid)
        return progress.parse(text) if text else []

    async def rows(self) -> list[classview.LearnerRow]:
        users = await self._get(url_concat(f"{self.api}/users", {"limit": "1000"})) or []
        learners = [user for user in users if isinstance(user, dict) and user.get("name") != self.plan.admin]
        return [classview.learner_row(user["name"], self.lines(user["name"]), await self.sessions(user))
                for user in sorted(learners, key=lambda user: user["name"])]  # fmt: skip

    async def report(self) -> dict:
        rows = await self.rows()
        return {"time": time.time(), "learners": [row.to_json() for row in rows],
                "lessons": classview.class_summary(rows, self.exercises)}  # fmt: skip


class _ForAdmin(HubOAuthenticated, web.RequestHandler):
    """Only the room's admin, signed in through JupyterHub."""

    def initialize(self, data: ClassData) -> None:
        self.data = data

    def prepare(self) -> None:
        user = self.current_user
        if user is None:
            return
        if user.get("name") != self.data.plan.admin:
            raise web.HTTPError(403, "The class page is the instructor's.")


class ReportHandler(_ForAdmin):
    @web.authenticated
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(await self.data.report())


class PageHandler(_ForAdmin):
    @web.authenticated
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(page(await self.data.report(), self.request.path.rstrip("/") + "/"))


class NotebookHandler(_ForAdmin):
    @web.authenticated
    def get(self, name: str, notebook: str) -> None:
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            raise web.HTTPError(404, "No such learner.") from None
        if notebook not in homefiles.learner_files(self.data.plan.homes / name, "lessons", uid):
            raise web.HTTPError(404, f"{name} has no lesson {notebook}.")
        text = homefiles.read_learner_file(self.data.plan.homes / name, f"lessons/{notebook}", uid, 32 * 2**20, False)
        if text is None:
            raise web.HTTPError(404, "That notebook cannot be read (too big, or not a plain file).")
        self.set_header("Content-Security-Policy", SANDBOX)
        self.set_header("Cache-Control", "no-store")
        self.finish(render_notebook(text, f"{name}: {notebook} (read-only)"))


def render_notebook(text: bytes, title: str) -> str:
    """A notebook as one read-only page (nbconvert's JupyterLab look, no script, nothing fetched)."""
    import nbformat
    from nbconvert import HTMLExporter

    from llminspect.teaching.handout import CDN_SCRIPT

    try:
        book = nbformat.reads(text.decode("utf-8", errors="replace"), as_version=4)
    except Exception:  # a learner's half-written file: say so rather than fail
        return f"<p>{html.escape(title)}: this notebook is not valid JSON right now (it may be mid-save).</p>"
    book.metadata["title"] = title
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(book)
    return CDN_SCRIPT.sub("", body)


def _learner_line(row: dict, base: str) -> str:
    name = html.escape(row["name"])
    notebook = Path(row["notebook"]).name if row["notebook"].startswith("lessons/") else ""
    link = f"<a href='{base}notebook/{name}/{html.escape(notebook)}'>open read-only</a>" if notebook else ""
    ago = f"{(time.time() - row['last_time']) / 60:.0f} min ago" if row["last_time"] else "no check yet"
    chips = " ".join(chip(item) for item in row["exercises"])
    return (f"<tr><td>{name}</td><td>{html.escape(row['lesson'] or '-')} {html.escape(notebook)} {link}</td>"
            f"<td>{ago}</td><td>{row['right']}</td><td>{row['stuck']}</td><td>{chips}</td></tr>")  # fmt: skip


def _lesson_line(lesson: str, summary: dict, learners: int) -> str:
    cells = []
    for number, counts in summary["exercises"].items():
        stuck = f" stuck: {html.escape(', '.join(counts['stuck names']))}" if counts["stuck names"] else ""
        cells.append(f"<span class='{'right' if counts['right'] == learners and learners else 'trying'}'>"
                     f"{number}: {counts['right']}/{learners} right{stuck}</span>")  # fmt: skip
    on_it = html.escape(", ".join(summary["on it"]) or "-")
    return f"<tr><td>{html.escape(lesson)}</td><td>{on_it}</td><td>{' '.join(cells)}</td></tr>"


def page(report: dict, base: str) -> str:
    """The class page's HTML (every learner-written text escaped)."""
    learners = report["learners"]
    rows = "".join(_learner_line(row, base) for row in learners)
    lessons = "".join(_lesson_line(lesson, summary, len(learners)) for lesson, summary in report["lessons"].items()
                      if summary["on it"] or any(c["right"] + c["stuck"] + c["trying"]
                                                 for c in summary["exercises"].values()))  # fmt: skip
    stamp = time.strftime("%H:%M:%S", time.localtime(report["time"]))
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='10'>"
            f"<title>The class</title><style>{STYLE}</style></head><body><h2>The class: {len(learners)} learners"
            f"</h2><p>Updated {stamp}; reloads every 10 s. <a href='/hub/admin'>Admin page</a></p>"
            "<h3>Lessons</h3><table><tr><th>lesson</th><th>on it now</th><th>exercises right (of the class)</th>"
            f"</tr>{lessons}</table><h3>Learners</h3><table><tr><th>learner</th><th>lesson</th><th>last check</th>"
            f"<th>right</th><th>stuck</th><th>exercises</th></tr>{rows}</table></body></html>")  # fmt: skip


def make_app(plan: RoomPlan, prefix: str) -> web.Application:
    data = ClassData(plan)
    return web.Application([
        (prefix, PageHandler, {"data": data}),
        (prefix + "api/class", ReportHandler, {"data": data}),
        (prefix + r"notebook/([a-z][a-z0-9-]{1,23})/([\w.-]+\.ipynb)", NotebookHandler, {"data": data}),
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))  # fmt: skip


def main(argv: list[str]) -> None:
    plan = RoomPlan.load(Path(argv[0]))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/class/")
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    make_app(plan, prefix).listen(url.port, url.hostname)
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:  # the hub stops its services with SIGINT
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
