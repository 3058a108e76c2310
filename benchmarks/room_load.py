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

``python benchmarks/room_load.py hostile`` (about 8 minutes): four learners do the lessons with no
one else, then again while a fifth, in their own account, forks without end, writes until their
disk refuses and spins three processes, and a client on another address tries 2,000 class codes
and 20 passwords for each learner's name. Reported: the four's p50/p95 cell time in both runs and
the ratio (goal ≤ 1.5×), failures, the hub's API latency during the sign-in burst, where each
hostile act was stopped and what the hostile learner was told, and that the four lost nothing.
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
from room_client import Learner, from_address, workload  # noqa: E402
from room_hostile import FILL, FORK, SPIN  # noqa: E402

from llminspect.room.accounts import processes_of, remove_accounts  # noqa: E402
from llminspect.room.plan import RoomPlan  # noqa: E402
from llminspect.room.running import open_room  # noqa: E402

CODE = "owl-fox-427"
ROOMS = Path("/srv")


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
    folder = Path(tempfile.mkdtemp(prefix="llminspect-load-", dir=ROOMS))  # not /tmp: each learner has their own
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


def honest(learner: Learner) -> dict:
    """The lessons, with a file written before and read after (nothing of theirs may be lost)."""
    mine = {"type": "file", "format": "text", "content": "x" * 100_000}
    learner.server("PUT", "api/contents/mine.txt", json=mine).raise_for_status()
    run = lessons(learner, None)
    kept = learner.server("GET", "api/contents/mine.txt", params={"content": "1"})
    run["kept"] = kept.status_code == 200 and kept.json()["content"] == mine["content"]
    return run


def hostile_acts(learner: Learner, until: threading.Event) -> dict:
    """Fork without end, fill the disk, then spin three processes until the others are done."""
    kernel = learner.open_kernel()
    report = {"fork": kernel.run(FORK).output.strip()}
    filled = kernel.run(FILL)
    report["fill"] = {"status": filled.status, "told": "Your home is full" in filled.output,
                      "MiB": kernel.run("import os\nprint(os.path.getsize('/tmp/fill') >> 20)").output.strip()}
    kernel.run("import os\nos.remove('/tmp/fill')")
    spun, cpu, told = 0.0, 0.0, False
    while not until.is_set():
        result = kernel.run(SPIN.format(seconds=10))
        spun, cpu = spun + result.seconds, cpu + float(result.output.split()[0])
        told = told or "This cell was slowed down" in result.output
    report["spin"] = {"wall s": spun, "cpu s": cpu, "cores used": cpu / max(spun, 1e-9), "told": told}
    return report


def guesser(url: str, names: list[str], codes: int = 2000, passwords: int = 20) -> dict:
    """Another computer guesses class codes, then (knowing the code) passwords for every name."""
    session, statuses = from_address("127.0.0.66"), {}
    for number in range(codes):
        status = Learner(url, f"guess{number}", "guess-pw", f"owl-fox-{number % 900 + 100}", session).sign_in()
        statuses[status.status_code] = statuses.get(status.status_code, 0) + 1
    tried = {}
    for name in names:
        for number in range(passwords):
            status = Learner(url, name, f"guess-{number}", CODE, from_address("127.0.0.67")).sign_in().status_code
            tried[status] = tried.get(status, 0) + 1
    return {"codes": statuses, "passwords": tried}


def hub_latency(url: str, stop: threading.Event, samples: list[float]) -> None:
    probe = from_address("127.0.0.5")
    while not stop.wait(0.2):
        started = time.perf_counter()
        probe.get(url + "hub/api", timeout=60)
        samples.append(time.perf_counter() - started)


def hostile_room(size: int, with_hostile: bool) -> dict:
    """``size`` honest learners through the lessons, with or without a hostile one and a guesser."""
    folder = Path(tempfile.mkdtemp(prefix="llminspect-load-", dir=ROOMS))  # not /tmp: each learner has their own
    folder.chmod(0o755)
    plan = RoomPlan.new(folder / "room", ip="127.0.0.1", port=free_port(), class_code=CODE)
    report: dict = {}
    try:
        with open_room(plan, say=lambda line: None):
            crowd = [Learner(plan.url, f"learner{i}", f"secret-{i}", CODE) for i in range(size + with_hostile)]
            assert all(learner.sign_in().status_code == 302 for learner in crowd)
            done, samples = threading.Event(), []
            with ThreadPoolExecutor(len(crowd) + 2) as pool:
                list(pool.map(lambda learner: learner.start_server(), crowd))
                runs = [pool.submit(honest, learner) for learner in crowd[:size]]
                if with_hostile:
                    acts = pool.submit(hostile_acts, crowd[-1], done)
                    pinger = threading.Thread(target=hub_latency, args=(plan.url, done, samples), daemon=True)
                    pinger.start()
                    guesses = pool.submit(guesser, plan.url, [learner.name for learner in crowd[:size]])
                try:
                    runs = [run.result() for run in runs]
                finally:
                    done.set()
                if with_hostile:
                    report |= {"hostile": acts.result(), "guessing": guesses.result(),
                               "hub api s": {"p50": statistics.median(samples), "max": max(samples)}}  # fmt: skip
    finally:
        remove_accounts(plan)
        shutil.rmtree(folder, ignore_errors=True)
    times = sorted(t for run in runs for t in run["times"])
    return report | {"p50 s": statistics.median(times), "p95 s": times[int(0.95 * (len(times) - 1))],
                     "failures": [f for run in runs for f in run["failures"]], "kept": all(r["kept"] for r in runs)}


def main_hostile(size: int = 4) -> None:
    alone = hostile_room(size, with_hostile=False)
    print(json.dumps(alone, indent=1), flush=True)
    beside = hostile_room(size, with_hostile=True)
    print(json.dumps(beside, indent=1), flush=True)
    print(f"\n| {size} learners | p50 cell | p95 cell | failures | files kept |\n|---|---|---|---|---|")
    for label, run in (("alone", alone), ("beside a hostile learner and a guesser", beside)):
        print(f"| {label} | {run['p50 s']:.2f} s | {run['p95 s']:.2f} s | {len(run['failures'])} | {run['kept']} |")
    print(f"ratio p50 {beside['p50 s'] / alone['p50 s']:.2f}x, p95 {beside['p95 s'] / alone['p95 s']:.2f}x")


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
    if sys.argv[1:2] == ["hostile"]:
        main_hostile(*(int(n) for n in sys.argv[2:3]))
    else:
        main([int(n) for n in sys.argv[1:]] or [1, 4, 8])
