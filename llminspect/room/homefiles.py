"""Reading a learner's files as root without being fooled: the class page runs as the hub's user
and must never follow a learner's symbolic link (to another learner's home, or /etc/shadow), hang
on a FIFO, or swallow a file of gigabytes.

Each folder on the way is opened with ``O_NOFOLLOW`` relative to the one before, the file with
``O_NOFOLLOW | O_NONBLOCK``; it must be a regular file owned by the learner; only the last
``limit`` bytes are read.

Example:
    >>> import os, tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> _ = (home / "notes.txt").write_text("hello")
    >>> read_learner_file(home, "notes.txt", os.getuid())
    b'hello'
    >>> (home / "link").symlink_to(home / "notes.txt")
    >>> read_learner_file(home, "link", os.getuid()) is None
    True
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

LIMIT = 4 * 2**20


def read_learner_file(home: Path, relative: str, uid: int, limit: int = LIMIT, tail: bool = True) -> bytes | None:
    """The file ``relative`` under ``home`` if it is a regular file owned by ``uid``, else ``None``.

    Bigger than ``limit``: its last ``limit`` bytes when ``tail``, else ``None``."""
    parts = PurePosixPath(relative).parts
    if not parts or any(part in ("..", "/", ".") for part in parts):
        return None
    opened = []
    try:
        folder = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        opened.append(folder)
        for part in parts[:-1]:
            folder = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            opened.append(folder)
        handle = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        opened.append(handle)
        found = os.fstat(handle)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != uid:
            return None
        if found.st_size > limit:
            if not tail:
                return None
            os.lseek(handle, found.st_size - limit, os.SEEK_SET)
        with os.fdopen(os.dup(handle), "rb") as file:
            return file.read(limit)
    except OSError:
        return None
    finally:
        for descriptor in opened:
            os.close(descriptor)


def learner_files(home: Path, folder: str, uid: int, suffix: str = ".ipynb") -> list[str]:
    """The names of ``uid``'s files ending in ``suffix`` in ``home/folder`` (no link followed)."""
    try:
        descriptor = os.open(home / folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return []
    try:
        names = []
        for name in sorted(os.listdir(descriptor)):
            try:
                found = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            except OSError:
                continue
            if name.endswith(suffix) and stat.S_ISREG(found.st_mode) and found.st_uid == uid:
                names.append(name)
        return names
    finally:
        os.close(descriptor)
