"""The room on a public network, checked on a real room (tests/room_check.py runs these):

- ``guessing``: a client on another address tries class codes, another tries passwords for a
  learner's name, while the hub's API is timed; the learner still signs in;
- ``hostile``: one learner forks without end, fills their disk, spins every core, writes /tmp;
  their neighbour's cells run, nothing of theirs leaks, each limit is said;
- ``quiz`` and ``class_page``: learners check answers; the instructor's page shows them, a
  learner is refused it, a notebook opens read-only;
- ``restarts``: a learner's server started many times in a row, on ports below the ephemeral ones;
- ``next_class``: after ``--forget``, the next class's account (same uid) owns nothing.
"""

from __future__ import annotations

import os
import pwd
import statistics
import subprocess
import threading
import time
from pathlib import Path

from room_client import Learner, from_address

from llminspect.room import accounts, disks
from llminspect.room.plan import RoomPlan

SHARED = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
FORK = """
import os, time
children = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except BlockingIOError as error:
    print("refused after", len(children), "forks:", error.strerror)
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""
FILL = "chunk = b'x' * 2**20\nwith open('/tmp/fill', 'wb') as out:\n    while True:\n        out.write(chunk)\n"
SPIN = """
import os, time
before = os.times()  # children of earlier cells (the fork bomb's) count in os.times() too
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        end = time.time() + {seconds}
        while time.time() < end:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
used = os.times()
print("%.2f" % (used.children_user + used.children_system - before.children_user - before.children_system))
"""
WORK = "import time\nt = time.perf_counter()\nsum(i * i for i in range(3_000_000))\nprint(time.perf_counter() - t)"


def guessing(url: str, code: str, learner: Learner, codes: int = 40, passwords: int = 12) -> dict:
    """Guess codes from 127.0.0.66 and ``learner``'s password from 127.0.0.67, timing the hub meanwhile."""
    timings, done = [], threading.Event()

    def ping() -> None:
        probe = from_address("127.0.0.5")
        while not done.is_set():
            started = time.perf_counter()
            probe.get(url + "hub/api", timeout=30)
            timings.append(time.perf_counter() - started)
            time.sleep(0.05)

    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    guesser = Learner(url, "guesser", "guess-pw", "", session=from_address("127.0.0.66"))
    statuses = []
    for number in range(codes):
        guesser.name, guesser.code = f"guesser{number}", f"owl-fox-{100 + number}"
        statuses.append(guesser.sign_in().status_code)
    said = guesser.sign_in().text
    taker = Learner(url, learner.name, "", code, session=from_address("127.0.0.67"))
    tried = []
    for number in range(passwords):
        taker.password = f"guess-{number}"
        tried.append(taker.sign_in().status_code)
    done.set()
    pinger.join()
    again = Learner(url, learner.name, learner.password, code, session=from_address("127.0.0.1"))
    return {"codes": statuses, "said": "Too many failed sign-ins from this computer" in said, "passwords": tried,
            "owner signs in": again.sign_in().status_code, "hub api p50 s": statistics.median(timings),
            "hub api max s": max(timings)}  # fmt: skip


def hostile(bad, good, plan: RoomPlan) -> dict:
    """``bad`` (a kernel) forks, fills its disk, spins and writes /tmp; ``good`` (a neighbour's kernel) works on."""
    report = {"fork": bad.run(FORK).output, "neighbour after fork": good.run("print(6 * 7)").output.strip()}
    filled = bad.run(FILL)
    report["fill"] = {"status": filled.status, "no space": "No space left on device" in filled.output,
                      "told": "Your home is full" in filled.output}  # fmt: skip
    report["filled MiB"] = int(bad.run("import os\nprint(os.path.getsize('/tmp/fill') // 2**20)").output)
    report["neighbour writes"] = good.run("open('kept.txt', 'w').write('x' * 2**20); print('ok')").output.strip()
    bad.run("import os\nos.remove('/tmp/fill')")
    bad.run("open('/tmp/planted-by-learner1', 'w').write('mine')")
    report["neighbour sees planted"] = good.run("import os\nprint(os.path.exists('/tmp/planted-by-learner1'))"
                                                ).output.strip()  # fmt: skip
    report["machine sees planted"] = Path("/tmp/planted-by-learner1").exists()
    alone = float(good.run(WORK).output)
    spin = threading.Thread(target=lambda: report.setdefault("spin", bad.run(SPIN.format(seconds=6)).output))
    # three processes that would use 18 s of CPU in 6 s get at most one core's 6 s; the first line says how much
    spin.start()
    time.sleep(1.5)
    report["neighbour cell x while spinning"] = float(good.run(WORK).output) / alone
    spin.join()
    return report


def quiz(kernels) -> dict:
    """Learner 0 gets lesson 03's exercise 5 (a window's keys) right and leaves 3 blank; learner 1 tries 5 three
    times, wrongly."""
    setup = "from llminspect.teaching.exercises import exercises\nquiz = exercises('03')\n"
    first = kernels[0].run(setup + "print(quiz.check(5, 4).verdict, '/', quiz.check(3, None).verdict)").output
    second = kernels[1].run(setup + "print([quiz.check(5, guess).verdict for guess in (3, 5, 6)])").output
    return {"learner0 said": first.strip(), "learner1 said": second.strip()}


def class_page(url: str, admin: Learner, crowd: list[Learner], kernel_id: str) -> dict:
    """The instructor's page after the quiz, and who may see it."""
    opened = crowd[0].server("POST", "api/sessions", json={"path": "lessons/03_attention.ipynb", "type": "notebook",
                                                           "name": "", "kernel": {"id": kernel_id}})  # fmt: skip
    report = {"session": opened.status_code}
    page = admin.session.get(url + "services/class/api/class", timeout=60)
    report["admin status"] = page.status_code
    data = page.json() if page.status_code == 200 else {}
    report["learners"] = {row["name"]: {"lesson": row["lesson"], "notebook": row["notebook"], "right": row["right"],
                                        "stuck": row["stuck"], "exercises": [[e["lesson"], e["exercise"], e["state"],
                                                                              e["tries"]] for e in row["exercises"]]}
                          for row in data.get("learners", [])}  # fmt: skip
    report["lesson 03"] = data.get("lessons", {}).get("03", {}).get("exercises", {}).get("5")
    report["html"] = admin.session.get(url + "services/class/", timeout=60).status_code
    view = admin.session.get(url + "services/class/notebook/learner0/03_attention.ipynb", timeout=60)
    report["notebook"] = {"status": view.status_code, "sandboxed": "sandbox" in view.headers.get(
        "Content-Security-Policy", ""), "title": "learner0: 03_attention.ipynb (read-only)" in view.text}  # fmt: skip
    report["learner status"] = crowd[1].session.get(url + "services/class/api/class", timeout=60).status_code
    return report


def server_port_of(name: str) -> int:
    """The port ``name``'s running server was given (read from its environment, as root)."""
    uid = pwd.getpwnam(name).pw_uid
    for pid in accounts.processes_of({uid}):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"JUPYTERHUB_SERVICE_URL="):
                return int(entry.decode().rsplit(":", 1)[1].split("/")[0])
    return 0


def restarts(learner: Learner, times: int) -> dict:
    """Stop and start ``learner``'s server ``times`` times in a row."""
    ports, failures = [], []
    for _ in range(times):
        learner._hub("DELETE", f"users/{learner.name}/server")
        while learner._hub("GET", f"users/{learner.name}").json().get("servers"):
            time.sleep(0.3)
        try:
            learner.start_server()
            ports.append(server_port_of(learner.name))
        except TimeoutError as error:
            failures.append(str(error))
    return {"ports": ports, "failures": failures}


def owned_by(uid: int, *folders: str | Path) -> list[str]:
    """Every path under ``folders`` (one file system each) that ``uid`` owns (find(1): fast on a big /tmp)."""
    found = subprocess.run(["find", *map(str, folders), "-xdev", "-uid", str(uid)], capture_output=True, text=True)
    return found.stdout.split()


def left_in_shared(uids: set[int]) -> list[str]:
    return [path for uid in sorted(uids) for path in owned_by(uid, *SHARED)]


def room_cgroups() -> list[str]:
    """The room's groups still there, in every controller this process is in."""
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, relative = line.split(":", 2)
        for name in names.split(",") if names else ["unified"]:
            folder = Path("/sys/fs/cgroup") / name / relative.lstrip("/") / "llminspect-room"
            found += [str(folder)] if folder.exists() else []
    return found


def next_class(root: Path, old_uids: set[int]) -> dict:
    """A new class's first account after the last one was forgotten: is its uid reused, does it own anything?"""
    plan = RoomPlan.new(root / "next-room", class_code="elk-yak-555")
    plan.root.mkdir(parents=True)
    plan.root.chmod(0o755)
    try:
        accounts.create_account(plan, "newcomer")
        uid = pwd.getpwnam("newcomer").pw_uid
        old = root / "room"  # what the last class could write there: their homes (and disks), the room's state
        owned = left_in_shared({uid}) + owned_by(uid, *[old / part for part in ("homes", "disks", "state")
                                                         if (old / part).exists()])  # fmt: skip
        home = sorted(os.listdir(plan.homes / "newcomer"))
        return {"uid reused": uid in old_uids, "owns elsewhere": owned, "home": home,
                "home is its own disk": disks.can_limit() and str(plan.homes / "newcomer") in disks._mounted()}
    finally:
        accounts.remove_accounts(plan)
