"""Each learner's disk: a home that is a file system of its own, and a /tmp that lives inside it.

A learner's home is an ext4 image (``disks/NAME.img``, sparse: it takes only what they write)
mounted on ``homes/NAME`` with ``nosuid,nodev``. When it is full the learner's writes fail with
"No space left on device" (the notice in their next cell says what to do) and nobody else notices.
Their server runs in a mount namespace of its own where ``/tmp`` and ``/var/tmp`` are
``~/.tmp`` and ``/dev/shm``, ``/run/lock`` are small fresh tmpfs: nothing a learner writes lands
outside their home, so nothing of one class is left for the next to inherit with a reused uid.

The instructor's reserve: a new learner is refused at sign-in when the room's disk, with every
learner's image filled to the brim, would have less than ``reserve_disk_mib`` free.

Example:
    >>> worst_case_free_mib(free_mib=40_000, images_mib=[2048, 2048], used_mib=[100, 300], new_mib=2048)
    34256
"""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
import subprocess
from pathlib import Path

from llminspect.room.plan import RoomPlan

MIB = 2**20
MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18
SHARED_WRITABLE = ("/tmp", "/var/tmp")  # bound to ~/.tmp inside the learner's namespace
SMALL_TMPFS = {"/dev/shm": "64m", "/run/lock": "1m"}
TMP = ".tmp"


def inside_private(folder: Path) -> str | None:
    """The shared writable folder ``folder`` lies in (each learner sees their own there), or ``None``."""
    for shared in (*SHARED_WRITABLE, *SMALL_TMPFS):
        if Path(folder).absolute().is_relative_to(shared):
            return shared
    return None


def worst_case_free_mib(free_mib: float, images_mib: list[int], used_mib: list[float], new_mib: int) -> int:
    """Free space left if every learner filled their image and one more learner came."""
    unwritten = sum(size - used for size, used in zip(images_mib, used_mib, strict=True))
    return int(free_mib - unwritten - new_mib)


def can_limit() -> bool:
    """Whether this machine can give learners a home of their own size (root, loop devices, mkfs.ext4)."""
    return os.geteuid() == 0 and Path("/dev/loop-control").exists() and shutil.which("mkfs.ext4") is not None


def image(plan: RoomPlan, name: str) -> Path:
    return plan.disks / f"{name}.img"


def _mounted() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def room_full(plan: RoomPlan) -> str | None:
    """Why one more learner would eat into the instructor's reserve of disk, or ``None``."""
    if not can_limit():
        return None
    images = sorted(plan.disks.glob("*.img")) if plan.disks.exists() else []
    used = [os.stat(path).st_blocks * 512 / MIB for path in images]
    free = shutil.disk_usage(plan.disks if plan.disks.exists() else plan.root).free / MIB
    left = worst_case_free_mib(free, [os.stat(path).st_size // MIB for path in images], used, plan.disk_mib)
    if left >= plan.reserve_disk_mib:
        return None
    return "The room's disk is full, so no new learner can join: ask the instructor (they can free space)."


def make_home(plan: RoomPlan, name: str, uid: int, gid: int) -> Path:
    """A fresh home for ``name``: its own file system of ``plan.disk_mib`` when the machine allows."""
    home = plan.homes / name
    home.mkdir(parents=True, exist_ok=True)
    if can_limit():
        plan.disks.mkdir(parents=True, exist_ok=True)
        plan.disks.chmod(0o700)
        path = image(plan, name)
        path.unlink(missing_ok=True)
        with path.open("wb") as file:
            file.truncate(plan.disk_mib * MIB)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E", f"root_owner={uid}:{gid}", str(path)], check=True)
        mount_home(plan, name)
        (home / "lost+found").rmdir()
    os.chown(home, uid, gid)
    home.chmod(0o700)
    tmp = home / TMP
    tmp.mkdir(exist_ok=True)
    os.chown(tmp, uid, gid)
    tmp.chmod(0o700)
    return home


def mount_home(plan: RoomPlan, name: str) -> bool:
    """Mount ``name``'s image on their home unless it already is; returns whether it is mounted."""
    home, path = plan.homes / name, image(plan, name)
    if str(home) in _mounted():
        return True
    if not path.exists():
        return False
    subprocess.run(["mount", "-o", MOUNT_OPTIONS, str(path), str(home)], check=True, capture_output=True)
    return True


def unmount_homes(plan: RoomPlan) -> list[str]:
    """Unmount every learner's home (after their processes ended); returns the names."""
    mounted = _mounted()
    done = []
    for home in sorted(plan.homes.iterdir()) if plan.homes.exists() else ():
        if str(home) in mounted:
            if subprocess.run(["umount", str(home)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", str(home)], capture_output=True)
            done.append(home.name)
    return done


def remove_images(plan: RoomPlan) -> None:
    unmount_homes(plan)
    shutil.rmtree(plan.disks, ignore_errors=True)


def _libc_call(function, *args) -> None:
    if function(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def private_tmp(home: Path) -> None:
    """In the calling process (as root, before it becomes the learner): a mount namespace of its own
    in which /tmp and /var/tmp are ``home/.tmp`` and the shared tmpfs folders are fresh and small."""
    libc = ctypes.CDLL(None, use_errno=True)
    _libc_call(libc.unshare, CLONE_NEWNS)
    _libc_call(libc.mount, b"none", b"/", None, MS_REC | MS_PRIVATE, None)  # nothing leaks back to the machine
    held = os.open(home / TMP, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)  # found again after /tmp is covered
    tmp = f"/proc/self/fd/{held}".encode()
    try:
        for folder in SHARED_WRITABLE:
            if Path(folder).is_dir():
                _libc_call(libc.mount, tmp, folder.encode(), None, MS_BIND, None)
    finally:
        os.close(held)
    for folder, size in SMALL_TMPFS.items():
        if Path(folder).is_dir():
            _libc_call(libc.mount, b"tmpfs", folder.encode(), b"tmpfs", 0, f"size={size},mode=1777".encode())


def sweep(uids: set[int], folders: tuple[str, ...] = (*SHARED_WRITABLE, *SMALL_TMPFS)) -> list[str]:
    """Remove what ``uids`` left in the machine's shared writable folders; returns the paths removed.

    A learner can only have made an entry inside a folder anyone may write to, so only those are
    searched (a big /tmp of the instructor's costs nothing); what they made goes whole."""
    removed, open_folders = [], [Path(folder) for folder in folders if Path(folder).is_dir()]
    while open_folders:
        try:
            entries = list(os.scandir(open_folders.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                found = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if found.st_uid in uids:
                if stat.S_ISDIR(found.st_mode):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
                removed.append(entry.path)
            elif stat.S_ISDIR(found.st_mode) and found.st_mode & stat.S_IWOTH:
                open_folders.append(Path(entry.path))
    return removed
