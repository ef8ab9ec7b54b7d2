"""Records of the emulated org: in memory or SQLite, with a search index that lags writes."""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

FIRST_RECORD_ID = 5725767000000411001
"""Ids count up from here, so every id is a 19-digit string like Zoho's."""


class RecordStore:
    """Thread-safe record storage; `lock()` makes a read-check-write sequence atomic."""

    def __init__(
        self,
        state_file: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        # module -> id -> (time the latest version becomes searchable, that version,
        # the version searchable until then or None)
        self._index: dict[str, dict[str, tuple[float, dict[str, Any], dict[str, Any] | None]]] = {}
        self._next_id = FIRST_RECORD_ID
        self._database: sqlite3.Connection | None = None
        self._state_file = state_file
        self.open()

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield

    def new_id(self) -> str:
        with self._lock:
            record_id = str(self._next_id)
            self._next_id += 1
            return record_id

    def get(self, module: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(module, {}).get(record_id)
            return copy.deepcopy(record) if record is not None else None

    def all(self, module: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(record) for record in self._records.get(module, {}).values()]

    def find_exact(self, module: str, field: str, value: Any) -> dict[str, Any] | None:
        """Return the first record whose `field` equals `value` exactly (not through search)."""
        with self._lock:
            for record in self._records.get(module, {}).values():
                stored = record.get(field)
                if isinstance(stored, dict):
                    stored = stored.get("id")
                if stored is not None and _same(stored, value):
                    return copy.deepcopy(record)
            return None

    def put(self, module: str, record: dict[str, Any], *, search_lag_seconds: float) -> None:
        """Store a new or changed record; search returns it after `search_lag_seconds`."""
        with self._lock:
            record_id = str(record["id"])
            stored = copy.deepcopy(record)
            previous_index = self._index.get(module, {}).get(record_id)
            searchable_before = None
            if previous_index is not None:
                visible_at, latest, older = previous_index
                searchable_before = latest if visible_at <= self._clock() else older
            self._records.setdefault(module, {})[record_id] = stored
            self._index.setdefault(module, {})[record_id] = (
                self._clock() + search_lag_seconds,
                copy.deepcopy(stored),
                searchable_before,
            )
            self._save(module, stored)

    def searchable(
        self, module: str, predicate: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> list[dict[str, Any]]:
        """Return the versions of records the search index contains now that match `predicate`."""
        now = self._clock()
        with self._lock:
            versions = []
            for visible_at, latest, older in self._index.get(module, {}).values():
                version = latest if visible_at <= now else older
                if version is not None and predicate(version):
                    versions.append(copy.deepcopy(version))
            return versions

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._index.clear()
            if self._database is not None:
                self._database.execute("DELETE FROM records")
                self._database.commit()

    def open(self) -> None:
        """Open the state file, if any and not open yet, and load its records."""
        with self._lock:
            if self._state_file is not None and self._database is None:
                self._open_database(self._state_file)

    def close(self) -> None:
        with self._lock:
            if self._database is not None:
                self._database.close()
                self._database = None

    def _open_database(self, state_file: Path) -> None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        database = sqlite3.connect(str(state_file), check_same_thread=False)
        database.execute(
            "CREATE TABLE IF NOT EXISTS records ("
            " module TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,"
            " PRIMARY KEY (module, id))"
        )
        database.commit()
        for module, record_id, body in database.execute("SELECT module, id, body FROM records"):
            record = json.loads(body)
            self._records.setdefault(module, {})[record_id] = record
            # Records from an earlier run are already in the search index.
            self._index.setdefault(module, {})[record_id] = (0.0, copy.deepcopy(record), None)
            self._next_id = max(self._next_id, int(record_id) + 1)
        self._database = database

    def _save(self, module: str, record: dict[str, Any]) -> None:
        if self._database is None:
            return
        self._database.execute(
            "INSERT OR REPLACE INTO records (module, id, body) VALUES (?, ?, ?)",
            (module, str(record["id"]), json.dumps(record)),
        )
        self._database.commit()


def _same(stored: Any, value: Any) -> bool:
    if isinstance(stored, bool) or isinstance(value, bool):
        return stored is value
    if isinstance(stored, int | float) or isinstance(value, int | float):
        try:
            return Decimal(str(stored)) == Decimal(str(value))
        except InvalidOperation:
            return False
    return str(stored) == str(value)
