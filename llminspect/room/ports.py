"""Ports for learners' servers, and a start that is retried instead of ending in a bare 500.

The cause of "the Jupyter server could not be started because no available port could be found":
JupyterHub picks a server's port by binding port 0 and closing it (``jupyterhub.utils.random_port``),
so the port comes from the kernel's *ephemeral* range (``net.ipv4.ip_local_port_range``, usually
32768-60999), and the server binds it seconds later, after importing JupyterLab. In between, every
outgoing connection on the machine (the proxy to each server, the servers to the hub API, the
learners' browsers through the proxy) and every kernel's five ZMQ ports (``jupyter_client`` picks
them the same way) draw from that very range; when one lands on the chosen port the server's
``listen`` fails with EADDRINUSE and, with ``port_retries = 0`` in JupyterHub's single-user
server, it exits. The room gives servers ports *below* the ephemeral range (``first_server_port``,
20000 up), which neither a bind to port 0 nor an outgoing connection is ever handed, skipping
those that are bound or promised to a server still starting. Should a start fail anyway, it is
retried on another port and the learner's start page says so (``start_listening``): a start
counts only once the server's own process listens on its port (``/proc/net/tcp`` and its file
descriptors), not when anything answers there.

Example:
    >>> ephemeral_range("32768\\t60999\\n")
    (32768, 60999)
    >>> candidates(20000, (32768, 60999), taken={20000, 20002})[:3]
    [20001, 20003, 20004]
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from subprocess import Popen

SPAN = 2000  # ports to look through
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


class StartFailed(Exception):
    """A learner's server that did not start after every try; ``jupyterhub_message`` is what they read."""

    def __init__(self, tries: int, why: str):
        super().__init__(f"the server did not start after {tries} tries: {why}")
        self.jupyterhub_message = (f"Your server did not start after {tries} tries ({why}). Reload this page "
                                   "to try again; if it fails again, ask the instructor (the room's log says why).")


def ephemeral_range(text: str | None = None) -> tuple[int, int]:
    """The ports the kernel hands to port-0 binds and outgoing connections."""
    try:
        low, high = (text if text is not None else RANGE_FILE.read_text()).split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def candidates(first: int, ephemeral: tuple[int, int], taken: set[int]) -> list[int]:
    """Ports from ``first`` up, outside the ephemeral range and not ``taken``."""
    low, high = ephemeral
    return [port for port in range(first, min(first + SPAN, 65536)) if not low <= port <= high and port not in taken]


def is_free(port: int, ip: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((ip, port))
            return True
        except OSError:
            return False


def server_port(first: int, taken: set[int], ip: str = "127.0.0.1") -> int:
    """A free port for a learner's server, outside the ephemeral range."""
    for port in candidates(first, ephemeral_range(), taken):
        if is_free(port, ip) and is_free(port, ""):
            return port
    raise StartFailed(1, f"no free port from {first} on, below the ephemeral ports")


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a socket listening on ``port`` (not someone else on it)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    try:
        held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    return bool(inodes & held)


async def listening(port: int, pid: int, exited: Callable[[], int | None], timeout: float) -> int | None:
    """Wait until process ``pid`` listens on ``port`` (``None``) or exits (its status)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (status := exited()) is not None:
            return status
        if listens(pid, port):
            return None
        await asyncio.sleep(0.25)
    return None  # still starting: JupyterHub's own wait takes over


async def start_listening(launch: Callable[[int], Awaitable[tuple[str, int]]], choose: Callable[[], int],
                          process: Callable[[], Popen], say: Callable[[str], None], tries: int = 3,
                          timeout: float = 170) -> tuple[str, int]:  # fmt: skip
    """Launch on a chosen port until the launched process listens there; ``say`` tells the learner of each retry."""
    why = ""
    for attempt in range(1, tries + 1):
        ip, port = await launch(choose())
        started = process()
        status = await listening(port, started.pid, started.poll, timeout)
        if status is None:
            return ip, port
        why = f"it stopped with status {status} on port {port}"
        if attempt < tries:
            say(f"Your server stopped while starting ({why}); starting it again (try {attempt + 1} of {tries}) ...")
    raise StartFailed(tries, why)
