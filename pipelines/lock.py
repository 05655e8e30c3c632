"""One run per ``work_dir``: an exclusive lock held for the whole run.

Two runs sharing a work_dir would delete each other's checkpoint blocks and interleave their
reports, so the second one is refused, naming the run that holds the folder.  The lock is an
``fcntl.flock`` on ``work_dir/.imgjuicer.lock``: the kernel releases it when the holding
process ends however it ends (``kill -9`` included), so a stale lock left by a killed run is
simply taken over by the next run; the pid / host / start time written into the file are only
there to name the holder in the refusal.  (flock is per host: two machines sharing a work_dir
over NFS are not guarded.)
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from typing import Iterator

LOCK_NAME = ".imgjuicer.lock"

_held: dict[str, tuple[int, int]] = {}   # realpath of work_dir -> (fd, depth) in this process


class WorkDirBusy(RuntimeError):
    """Another run holds the work_dir."""


class WorkDirUnusable(RuntimeError):
    """The work_dir cannot be created or written."""


def _holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
        return f"pid {info.get('pid')} on {info.get('host')}, started {started}"
    except (OSError, ValueError):
        return "a run whose pid is not recorded yet"


def acquire(work_dir: str) -> None:
    """Take the work_dir's lock (re-entrant within one process); raise WorkDirBusy naming
    the holder, or WorkDirUnusable when the folder cannot be created or written."""
    key = os.path.realpath(work_dir)
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        return
    path = os.path.join(work_dir, LOCK_NAME)
    try:
        os.makedirs(work_dir, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)   # O_CLOEXEC: not passed on by exec
    except OSError as exc:
        raise WorkDirUnusable(f"work_dir: cannot create or write '{work_dir}': "
                              f"{exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkDirBusy(f"work_dir '{work_dir}' is in use by another run ({_holder(path)}); "
                          "wait for it to finish, or give this run another work_dir") from None
    # ours now: a lock file left by a killed run is overwritten with this run's identity
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.time()}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, info, 0)
    _held[key] = (fd, 1)


def release(work_dir: str) -> None:
    key = os.path.realpath(work_dir)
    if key not in _held:
        return
    fd, depth = _held[key]
    if depth > 1:
        _held[key] = (fd, depth - 1)
        return
    del _held[key]
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[None]:
    acquire(work_dir)
    try:
        yield
    finally:
        release(work_dir)
