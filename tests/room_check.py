"""Open a real room (JupyterHub, configurable-http-proxy, one system account per learner), put
learners through it, and write what happened as JSON: ``python tests/room_check.py OUT.json``.

Run as root, normally inside a network namespace with loopback only (tests/test_room.py runs
``unshare -n python tests/room_check.py OUT.json 2 --cut-network``), which proves the room needs
nothing beyond the machine. Every account, home
and folder it made is removed at the end.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import room_hostile  # noqa: E402
from cut_network import loopback_up  # noqa: E402
from lab_browser import free_port  # noqa: E402
from room_client import Learner  # noqa: E402

from llminspect.room.accounts import is_room_account, processes_of, remove_accounts  # noqa: E402
from llminspect.room.plan import RoomPlan  # noqa: E402
from llminspect.room.running import open_room  # noqa: E402

CODE = "owl-fox-427"
ROOMS = Path("/srv")
FIRST_CELL = ("import os, llminspect as li\nm = li.load('decoder')\ntr = m.trace('The capital of France is')\n"
              "print(m.tokenizer.decode(int(tr.logits[-1].argmax())), os.getuid(), os.environ['HOME'])")  # fmt: skip
PEEK = """
import os
def attempt(what, action):
    try:
        action()
        print(what, "ALLOWED")
    except OSError as error:
        print(what, "refused", type(error).__name__)
other = os.path.join(os.path.dirname(os.environ["HOME"]), {other!r})
attempt("read", lambda: open(os.path.join(other, "lessons", "00_start_here.ipynb")).read())
attempt("list", lambda: os.listdir(other))
attempt("write", lambda: open(os.path.join(other, "planted.txt"), "w").write("x"))
attempt("models", lambda: open(os.path.join(os.environ["LLMINSPECT_CACHE"], "planted.txt"), "w").write("x"))
attempt("claims", lambda: open({claims!r}).read())
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, FileNotFoundError):
        return False


def check(out: Path, learners: int = 2) -> dict:
    root = Path(tempfile.mkdtemp(prefix="llminspect-room-", dir=ROOMS))  # not /tmp: each learner has their own
    root.chmod(0o755)
    plan = RoomPlan.new(root / "room", ip="127.0.0.1", port=free_port(), class_code=CODE, memory_limit_mib=2048,
                        disk_mib=300, sign_in_failures_per_address=10)  # fmt: skip
    report: dict = {"plan": {"url": plan.url, "memory_limit_mib": plan.memory_limit_mib}}
    uids: set[int] = set()
    try:
        with open_room(plan, say=lambda line: None) as room:
            uids = class_in(plan, learners, report)
            hub_pid = room.process.pid
            proxy_pid = int((plan.state / "proxy.pid").read_text())
        report["left running"] = {"learner processes": processes_of(uids), "hub": alive(hub_pid),
                                  "proxy": alive(proxy_pid)}  # fmt: skip
        report["left in shared folders"] = room_hostile.left_in_shared(uids)
        report["cgroups left"] = room_hostile.room_cgroups()
    finally:
        if (plan.state / "jupyterhub.log").exists():
            shutil.copy(plan.state / "jupyterhub.log", out.with_suffix(".log"))
        report["accounts removed"] = remove_accounts(plan)
        report["instructor account"] = is_room_account(plan.admin)
        if uids:
            started = time.perf_counter()
            report["next class"] = room_hostile.next_class(root, uids)
            report.setdefault("added s", {})["next class"] = time.perf_counter() - started
        shutil.rmtree(root, ignore_errors=True)
        out.write_text(json.dumps(report, indent=1))
    return report


def class_in(plan: RoomPlan, learners: int, report: dict) -> set[int]:
    """A class through the room: sign-ins, guessing, lessons, the limits, the class page, restarts."""
    url = plan.url
    report["refused"] = {
        "wrong code": Learner(url, "mallory", "secret-m", "fox-13").sign_in().status_code,
        "system name": Learner(url, "daemon", "secret-d", CODE).sign_in().status_code,
        "short password": Learner(url, "bob", "pw", CODE).sign_in().status_code,
    }
    crowd = [Learner(url, f"learner{i}", f"secret-{i}", CODE) for i in range(learners)]
    report["signed in"] = [learner.sign_in().status_code for learner in crowd]
    report["impostor"] = Learner(url, "learner0", "not-theirs", CODE).sign_in().status_code
    timed = report.setdefault("added s", {})
    started = time.perf_counter()
    report["guessing"] = room_hostile.guessing(url, CODE, crowd[0])
    timed["guessing"] = time.perf_counter() - started
    with ThreadPoolExecutor(learners) as pool:
        report["server start s"] = list(pool.map(lambda learner: learner.start_server(), crowd))
        kernels = list(pool.map(lambda learner: learner.open_kernel(), crowd))
        firsts = list(pool.map(lambda kernel: kernel.run(FIRST_CELL), kernels))
    report["first cell"] = [vars(result) for result in firsts]
    news = crowd[0].server("GET", "lab/api/settings/@jupyterlab/apputils-extension:notification").json()
    report["news prompt"] = news["schema"]["properties"]["fetchNews"]["default"]  # the room's override
    claims = str(plan.state / "claims.json")
    report["peek"] = kernels[1].run(PEEK.format(other="learner0", claims=claims)).output
    # the memory limit: a cell that takes more than the room allows stops that kernel only
    report["hog"] = vars(kernels[0].run("hog = bytearray(3 * 2**30)"))
    report["neighbour after hog"] = vars(kernels[1].run("print(1 + 1)"))
    fresh = crowd[0].open_kernel()
    report["after hog"] = vars(fresh.run("print('fresh kernel')"))
    # the learner's own edits survive a server restart
    fresh.run("open('lessons/mine.txt', 'w').write('my notes')")
    crowd[0]._hub("DELETE", "users/learner0/server")
    while crowd[0]._hub("GET", "users/learner0").json().get("servers"):
        time.sleep(0.5)
    crowd[0].start_server()
    again = crowd[0].open_kernel()
    report["kept after restart"] = again.run("print(open('lessons/mine.txt').read())").output.strip()
    admin = Learner(url, plan.admin, plan.admin_password, "")
    report["admin sign-in"] = admin.sign_in().status_code
    report["admin page"] = admin.session.get(url + "hub/admin", timeout=30).status_code
    users = admin._hub("GET", "users").json()
    report["admin sees"] = {user["name"]: bool(user.get("server")) for user in users}
    report["learner sees admin page"] = crowd[1].session.get(url + "hub/admin", timeout=30).status_code
    started = time.perf_counter()
    report["quiz"] = room_hostile.quiz([again, kernels[1]])
    report["class page"] = room_hostile.class_page(url, admin, crowd, again.id)
    timed["quiz and class page"] = time.perf_counter() - started
    started = time.perf_counter()
    report["hostile"] = room_hostile.hostile(kernels[1], again, plan)
    report["kept by neighbour"] = again.run("print(len(open('kept.txt').read()))").output.strip()
    timed["hostile"] = time.perf_counter() - started
    uids = {pwd.getpwnam(learner.name).pw_uid for learner in crowd}
    report["learner processes while open"] = len(processes_of(uids))
    started = time.perf_counter()
    report["restarts"] = room_hostile.restarts(crowd[1], 4)
    timed["restarts"] = time.perf_counter() - started
    return uids


if __name__ == "__main__":
    if "--cut-network" in sys.argv:  # run under `unshare -n`: only loopback exists, and it starts down
        sys.argv.remove("--cut-network")
        loopback_up()
    print(json.dumps(check(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2), indent=1))
