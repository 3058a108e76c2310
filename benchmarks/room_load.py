"""A room under load: 1, 4 and 8 simulated learners at once on this machine, through the real hub.

Each learner signs in through JupyterHub's login form, starts their server (own system account)
and, in fresh kernels over the kernel websocket, runs lesson 00 whole and lessons 03 and 05 up to
their first live view — all learners at the same moment. Reported per room size: p50/p95 cell
latency and their ratio to one learner alone, server start time, memory per learner as PSS
(shared pages split between the processes that map them, so the weights every kernel maps
from the same safetensors count once per room, not once per learner), hub + proxy PSS, and
failures (must be 0). With more than one learner, learner0's kernel is killed (SIGKILL) after
its second cell: the others must finish, and learner0 opens a new kernel and runs the lesson again.

Run as root: ``python benchmarks/room_load.py [N ...]`` (about 15 minutes for 1, 4 and 8).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from lab_browser import free_port  # noqa: E402
from room_client import Learner, workload  # noqa: E402

from llminspect.room.accounts import processes_of, remove_accounts  # noqa: E402
from llminspect.room.plan import RoomPlan  # noqa: E402
from llminspect.room.running import open_room  # noqa: E402

CODE = "owl-42"


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def owner(pid: int) -> int | None:
    try:
        return Path(f"/proc/{pid}").stat().st_uid
    except OSError:
        return None


def children(pid: int) -> list[int]:
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(Path(f"/proc/{entry.name}/stat").read_text().split(") ")[1].split()[1]) == pid:
                    found += children(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


class Meter(threading.Thread):
    """Samples PSS per learner and of the hub's own processes every half second; keeps the peaks."""

    def __init__(self, learners: dict[str, int], hub_pid: int):
        super().__init__(daemon=True)
        self.learners, self.hub_pid, self.stop = learners, hub_pid, threading.Event()
        self.peak = {name: 0.0 for name in learners} | {"hub + proxy": 0.0}

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for name, uid in self.learners.items():
                self.peak[name] = max(self.peak[name], pss_mib(processes_of({uid})))
            own = [pid for pid in children(self.hub_pid) if owner(pid) == 0]  # not the learners' servers
            self.peak["hub + proxy"] = max(self.peak["hub + proxy"], pss_mib(own))


def kill_kernel(name: str) -> None:
    uid = pwd.getpwnam(name).pw_uid
    for pid in processes_of({uid}):
        if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def lessons(learner: Learner, kill_after: int | None) -> dict:
    """Run the workload; returns cell latencies, failures and whether a killed kernel was recovered."""
    times, failures, recovered = [], [], None
    for notebook, cells in workload().items():
        kernel, index = learner.open_kernel(), 0
        while index < len(cells):
            if kill_after is not None and notebook.startswith("00") and index == kill_after:
                kill_kernel(learner.name)
                kill_after = None
                died = kernel.run("print('after the kill')")
                recovered = died.status == "died"
                kernel.socket.close()
                kernel, index = learner.open_kernel(), 0  # a new kernel, the lesson from the top
                continue
            result = kernel.run(cells[index])
            if result.status != "ok":
                failures.append(f"{notebook} cell {index}: {result.status} {result.output[-300:]}")
            times.append(result.seconds)
            index += 1
        kernel.close()
    return {"times": times, "failures": failures, "recovered": recovered}


def room_of(size: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="llminspect-load-"))
    folder.chmod(0o755)
    plan = RoomPlan.new(folder / "room", ip="127.0.0.1", port=free_port(), class_code=CODE)
    try:
        with open_room(plan, say=lambda line: None) as room:
            crowd = [Learner(plan.url, f"learner{i}", f"secret-{i}", CODE) for i in range(size)]
            assert all(learner.sign_in().status_code == 302 for learner in crowd)
            with ThreadPoolExecutor(size) as pool:
                starts = list(pool.map(lambda learner: learner.start_server(), crowd))
                meter = Meter({learner.name: pwd.getpwnam(learner.name).pw_uid for learner in crowd}, room.process.pid)
                meter.start()
                began = time.perf_counter()
                runs = list(pool.map(lambda pair: lessons(pair[1], 1 if pair[0] == 0 and size > 1 else None),
                                     enumerate(crowd)))  # fmt: skip
                wall = time.perf_counter() - began
            meter.stop.set()
            meter.join()
    finally:
        remove_accounts(plan)
        shutil.rmtree(folder, ignore_errors=True)
    times = sorted(t for run in runs for t in run["times"])
    per_learner = [meter.peak[learner.name] for learner in crowd]
    return {"learners": size, "cells": len(times), "p50 s": statistics.median(times),
            "p95 s": times[int(0.95 * (len(times) - 1))], "wall s": wall, "server start s": max(starts),
            "PSS per learner MiB": statistics.mean(per_learner), "PSS max learner MiB": max(per_learner),
            "hub + proxy MiB": meter.peak["hub + proxy"], "failures": [f for run in runs for f in run["failures"]],
            "killed kernel recovered": runs[0]["recovered"] and not runs[0]["failures"]}  # fmt: skip


def main(sizes: list[int]) -> None:
    results = []
    for size in sizes:
        results.append(room_of(size))
        print(json.dumps(results[-1], indent=1), flush=True)
    base = results[0]
    print("\n| learners | p50 cell | p95 cell | vs one learner (p50 / p95) | server start | PSS per learner "
          "(mean / max) | hub + proxy | failures | killed kernel |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['learners']} | {r['p50 s']:.2f} s | {r['p95 s']:.2f} s | {r['p50 s'] / base['p50 s']:.1f}x / "
              f"{r['p95 s'] / base['p95 s']:.1f}x | {r['server start s']:.1f} s | {r['PSS per learner MiB']:.0f} / "
              f"{r['PSS max learner MiB']:.0f} MiB | {r['hub + proxy MiB']:.0f} MiB | {len(r['failures'])} | "
              f"{'recovered' if r['killed kernel recovered'] else '-'} |")


if __name__ == "__main__":
    main([int(n) for n in sys.argv[1:]] or [1, 4, 8])
