"""Is the process that writes a run still alive? Writer identity, lock files and the stale test.

A pid alone cannot tell: another container sharing the runs folder has its own pids (its
live writer looks dead here), a container's writer is often pid 1 (which is alive in every
container), and pids are reused. So each writer (one open ``Store``) holds an OS lock for as
long as it lives: ``fcntl.flock`` on ``<db>-writers/<token>.lock``, which the kernel releases
when the process ends, however it ends (SIGKILL included), and which works across
containers on one machine and across machines on filesystems with working locks (local
disks, bind mounts, NFSv4). Every lock file is locked from birth (made under a temporary
name, locked, then renamed), so a lock file that can be locked is a dead writer's.

A run row records its writer's token, pid, host, process start time and whether it holds a
lock. When the lock cannot decide (no ``fcntl``, a filesystem without locks, rows of older
versions), the row's host and process start time do: a run of another host is left alone
(it may well be alive); on this host its writer is alive if a process with that pid runs
and started when the writer did (so a reused pid does not keep a dead run ``running``).
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["WriterId", "WriterLock", "lock_dir", "lock_state", "writer_gone", "remove_lock", "sweep_locks",
           "process_start_time", "pid_alive", "this_writer"]

HELD, FREE, MISSING, UNKNOWN = "held", "free", "missing", "unknown"
_ORPHAN_AGE = 60.0  # seconds after which an unrenamed temporary lock file is a dead writer's


@dataclass(frozen=True)
class WriterId:
    """Who writes: the store's token, the process id, the host name and the process start time."""

    token: str
    pid: int
    host: str
    started: float | None


def this_writer(token: str) -> WriterId:
    pid = os.getpid()
    return WriterId(token, pid, socket.gethostname(), process_start_time(pid))


def lock_dir(db: Path) -> Path:
    """The folder of the writers' lock files of database ``db``."""
    return db.with_name(db.name + "-writers")


def _lock_path(db: Path, token: str) -> Path:
    return lock_dir(db) / f"{token}.lock"


class WriterLock:
    """The lock a live writer holds; ``held`` is False where locks are not available."""

    def __init__(self, db: Path, writer: WriterId, make_dir: bool = True) -> None:
        self.path = _lock_path(db, writer.token)
        self.held = False
        self._fd: int | None = None
        if fcntl is None:
            return
        if not make_dir and not self.path.parent.is_dir():  # a store opened to read: no folder made for it
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, json.dumps({"pid": writer.pid, "host": writer.host, "started": writer.started,
                                     "token": writer.token}).encode())
            os.replace(tmp, self.path)
        except OSError:  # e.g. a filesystem without locks: the row says so, the heuristics decide
            os.close(fd)
            _unlink(tmp)
            return
        self._fd, self.held = fd, True

    def release(self) -> None:
        """Remove the lock file, then let the lock go (the process ending does the same)."""
        fd, self._fd, self.held = self._fd, None, False
        if fd is not None:
            _unlink(self.path)
            os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def lock_state(db: Path, token: str) -> str:
    """``held`` (its writer lives), ``free`` (it died), ``missing`` (no lock file) or ``unknown``."""
    if fcntl is None:
        return UNKNOWN
    return _try_lock(_lock_path(db, token))


def _try_lock(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return MISSING
    except OSError:
        return UNKNOWN
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return HELD
    except OSError:
        return UNKNOWN
    finally:
        os.close(fd)  # closing releases a lock we took
    return FREE


def writer_gone(db: Path, row: tuple[Any, ...], me: WriterId, live_tokens: set[str]) -> bool:
    """Whether the writer of a ``running`` row has ended. ``row``: (pid, token, host, started, lock)."""
    pid, token, host, started, locked = row
    if locked and token:
        state = lock_state(db, token)
        if state == HELD:
            return False
        if state in (FREE, MISSING):  # a lock file goes only with its writer (or after it died)
            return True
    if host is not None and host != me.host:
        return False  # another machine and no lock to ask: it may be alive, leave it
    if pid == me.pid and (started is None or me.started is None or _same_time(started, me.started)):
        return token not in live_tokens  # this process: alive while its store is open
    if not pid_alive(pid):
        return True
    if started is not None:
        now = process_start_time(pid)
        if now is not None and not _same_time(now, started):
            return True  # the pid was reused by a later process
    return False


def _same_time(a: float, b: float) -> bool:
    return abs(a - b) < 1.0


def remove_lock(db: Path, token: str) -> None:
    """Remove the lock file of a writer found dead."""
    if token:
        _unlink(_lock_path(db, token))


def sweep_locks(db: Path) -> None:
    """Remove lock files left by writers that died (they can be locked, or never got renamed)."""
    folder = lock_dir(db)
    if fcntl is None or not folder.is_dir():
        return
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    now = time.time()
    for path in entries:
        if path.suffix == ".lock":
            if _try_lock(path) == FREE:
                _unlink(path)
        elif path.name.endswith(".lock.tmp"):
            try:
                old = now - path.stat().st_mtime > _ORPHAN_AGE
            except OSError:
                continue
            if old and _try_lock(path) == FREE:
                _unlink(path)


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (unix seconds), where the system tells (Linux); else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat, counted after the command name
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, AttributeError):
        return None


_BOOT: list[float] = []


def _boot_time() -> float:
    if not _BOOT:
        with open("/proc/stat", "rb") as fh:
            for line in fh:
                if line.startswith(b"btime"):
                    _BOOT.append(float(line.split()[1]))
                    break
            else:
                raise ValueError("no btime in /proc/stat")
    return _BOOT[0]


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` still runs on this machine (a zombie counts as gone)."""
    if pid is None or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would end the process on Windows
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists
    return state not in (b"Z", b"X")


def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    import ctypes

    kernel32: Any = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)
