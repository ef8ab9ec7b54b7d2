"""Record locks: events that touch the same CRM record run one at a time.

Inside a process each record key has a `threading.Lock` that exists only while some thread holds
or waits for it, so the table never grows past the number of events in flight. Across processes
that share a journal, each key also takes a file lock in `lock_dir`. The operating system
releases a file lock when its holder dies, so a killed process never leaves a key locked.

The file locks are striped: a key hashes to one of `LOCK_FILE_STRIPES` files, because filelock
keeps a lock file after release and one file per account would grow without bound. Two keys on
the same stripe wait for each other across processes, which costs time but never correctness.

An event locks every record key of its plan. Locks are always taken in one global order (all
in-process locks by sorted key, then all file locks by sorted file name), so two events that
share several keys cannot deadlock.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import filelock

from engine.journal.base import record_key_text
from engine.planning.plan import RecordKey

LOCK_FILE_STRIPES = 256


class LockTimeoutError(Exception):
    """A record lock was not acquired before the deadline."""


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class RecordLocks:
    """Per-record locks for threads of one process and, with `lock_dir`, across processes."""

    def __init__(
        self,
        lock_dir: Path | None = None,
        *,
        clock: Callable[[], float],
    ) -> None:
        self._lock_dir = lock_dir
        self._clock = clock
        self._table: dict[str, _KeyLock] = {}
        self._table_lock = threading.Lock()
        if lock_dir is not None:
            lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    @property
    def held_keys(self) -> int:
        """Number of keys that some thread has locked or is waiting for."""
        with self._table_lock:
            return len(self._table)

    @contextmanager
    def hold(self, keys: Iterable[RecordKey], *, deadline: float) -> Iterator[None]:
        """Hold the locks of all `keys` until the block ends.

        Raises `LockTimeoutError` when a lock is still busy at `deadline` (a `clock` value).
        """
        names = sorted({_key_name(key) for key in keys})
        with ExitStack() as stack:
            for name in names:
                stack.enter_context(self._hold_in_process(name, deadline))
            if self._lock_dir is not None:
                for file_name in sorted({_file_name(name) for name in names}):
                    stack.enter_context(self._hold_file(self._lock_dir / file_name, deadline))
            yield

    @contextmanager
    def _hold_in_process(self, name: str, deadline: float) -> Iterator[None]:
        with self._table_lock:
            entry = self._table.get(name)
            if entry is None:
                entry = self._table[name] = _KeyLock()
            entry.users += 1
        try:
            if not entry.lock.acquire(timeout=max(deadline - self._clock(), 0.0)):
                raise LockTimeoutError(f"record {name} is busy")
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            with self._table_lock:
                entry.users -= 1
                if entry.users == 0:
                    del self._table[name]

    @contextmanager
    def _hold_file(self, path: Path, deadline: float) -> Iterator[None]:
        lock = filelock.FileLock(path, mode=0o600)
        try:
            lock.acquire(timeout=max(deadline - self._clock(), 0.0))
        except filelock.Timeout as error:
            raise LockTimeoutError(f"lock file {path.name} is busy") from error
        try:
            yield
        finally:
            lock.release()


def _key_name(key: RecordKey) -> str:
    return f"{key.module}.{key.field}={record_key_text(key.value)}"


def _file_name(name: str) -> str:
    # Hashing also keeps account ids, which are phone numbers, out of file names.
    stripe = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % LOCK_FILE_STRIPES
    return f"record-{stripe:03d}.lock"
