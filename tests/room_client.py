"""A simulated learner in a room: signs in through the hub's own login form, starts their server,
and runs lesson cells in a kernel over the kernel websocket — what a browser does, minus the page.

Used by tests/test_room.py and benchmarks/room_load.py. Lesson cells are read from the notebooks
themselves (``workload``) so the load is the lessons' real load.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import requests
import websocket
from requests.adapters import HTTPAdapter

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def decode(frame: str | bytes) -> dict:
    """A kernel message from the websocket: JSON text, or (with binary buffers, e.g. a widget's) the
    binary framing: a count, that many big-endian offsets, the JSON at the first, the buffers after."""
    if isinstance(frame, str):
        return json.loads(frame)
    count = int.from_bytes(frame[:4], "big")
    offsets = [int.from_bytes(frame[4 + 4 * i : 8 + 4 * i], "big") for i in range(count)] + [len(frame)]
    return json.loads(frame[offsets[0] : offsets[1]])


def lesson_cells(notebook: str, up_to_first_live: bool = False) -> list[str]:
    """The code cells of a lesson; with ``up_to_first_live`` only those up to its first live widget."""
    cells = [c.source for c in nbformat.read(NOTEBOOKS / notebook, 4).cells if c.cell_type == "code"]
    if up_to_first_live:
        first = next(i for i, source in enumerate(cells) if "li.labs." in source)
        cells = cells[: first + 1]
    return cells


def workload() -> dict[str, list[str]]:
    """Lesson 00 whole, and lessons 03 and 05 up to their first live view."""
    return {"00_start_here.ipynb": lesson_cells("00_start_here.ipynb"),
            "03_attention.ipynb": lesson_cells("03_attention.ipynb", up_to_first_live=True),
            "05_sampling.ipynb": lesson_cells("05_sampling.ipynb", up_to_first_live=True)}  # fmt: skip


class FromAddress(HTTPAdapter):
    """Connections from one source address (any of 127.0.0.0/8 is loopback): another computer, to the room."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        return super().init_poolmanager(*args, **kwargs)


def from_address(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", FromAddress(address))
    return session


@dataclass
class CellResult:
    seconds: float
    status: str  # "ok", "error" or "died"
    output: str = ""


@dataclass
class Learner:
    base: str  # the room's URL, ending in /
    name: str
    password: str
    code: str
    session: requests.Session = field(default_factory=requests.Session)
    token: str = ""

    def sign_in(self) -> requests.Response:
        """The hub's login form, as a browser posts it (with its XSRF token)."""
        self.session.get(self.base + "hub/login", timeout=30)
        form = {"username": self.name, "password": self.password, "otp": self.code,
                "_xsrf": self.session.cookies.get("_xsrf", "")}  # fmt: skip
        return self.session.post(self.base + "hub/login", data=form, allow_redirects=False, timeout=60)

    def _hub(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"} if self.token else \
            {"X-XSRFToken": self.session.cookies.get("_xsrf", path="/hub/") or ""}  # fmt: skip
        return self.session.request(method, self.base + "hub/api/" + path, headers=headers, timeout=60, **kwargs)

    def start_server(self, timeout: float = 180) -> float:
        """Ask for a token (signed in by cookie), start the server, wait until it answers; seconds taken."""
        started = time.perf_counter()
        reply = self._hub("POST", f"users/{self.name}/tokens", json={"note": "room load test"})
        reply.raise_for_status()
        self.token = reply.json()["token"]
        self._hub("POST", f"users/{self.name}/server")  # 201, 202, or 400 when already starting
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self._hub("GET", f"users/{self.name}").json().get("servers", {}).get("", {})
            if server.get("ready"):
                return time.perf_counter() - started
            time.sleep(0.5)
        raise TimeoutError(f"{self.name}'s server did not start in {timeout} s")

    def server(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base}user/{self.name}/{path}", timeout=120,
                                    headers={"Authorization": f"token {self.token}"}, **kwargs)  # fmt: skip

    def open_kernel(self) -> Kernel:
        reply = self.server("POST", "api/kernels", json={"name": "python3"})
        reply.raise_for_status()
        return Kernel(self, reply.json()["id"])


class Kernel:
    """One kernel of a learner, driven through the websocket the browser would use."""

    def __init__(self, learner: Learner, kernel_id: str):
        self.learner, self.id = learner, kernel_id
        url = learner.base.replace("http", "ws", 1) + f"user/{learner.name}/api/kernels/{kernel_id}/channels"
        self.socket = websocket.create_connection(url, header=[f"Authorization: token {learner.token}"], timeout=600)
        self.session = uuid.uuid4().hex

    def run(self, code: str, timeout: float = 600) -> CellResult:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": self.learner.name, "session": self.session,
                  "msg_type": "execute_request", "version": "5.3", "date": ""}  # fmt: skip
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        started = time.perf_counter()
        self.socket.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                                     "channel": "shell", "buffers": []}))  # fmt: skip
        output, status, replied, idle = [], "ok", False, False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]!r}")
            try:
                message = decode(self.socket.recv())
            except (websocket.WebSocketException, OSError):
                return CellResult(time.perf_counter() - started, "died", "".join(output))
            kind, body = message["msg_type"], message["content"]
            if kind == "status" and body.get("execution_state") in ("dead", "restarting"):
                return CellResult(time.perf_counter() - started, "died", "".join(output))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if kind == "stream":
                output.append(body["text"])
            elif kind == "error":
                status = "error"
                output.append("\n".join(body["traceback"]))
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and body["execution_state"] == "idle":
                idle = True
        return CellResult(time.perf_counter() - started, status, "".join(output))

    def close(self) -> None:
        self.socket.close()
        self.learner.server("DELETE", f"api/kernels/{self.id}")
