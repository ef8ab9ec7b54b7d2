"""The journal in an embedded SQLite file.

The file is opened in WAL mode so that readers never wait for the writer, with a busy timeout so
that writers from other threads and processes wait their turn instead of failing. Each thread
uses its own connection, closed when the thread ends. Every change is one `BEGIN IMMEDIATE`
transaction, so a process killed at any point leaves either the whole change or none of it.

The file holds event bodies, which contain personal data (names, e-mail addresses, phone
numbers), so it is created with mode 0600 in a directory created with mode 0700. SQLite creates
its `-wal` and `-shm` files with the mode of the database file.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.journal.base import (
    FINISHED_OUTCOMES,
    UNFINISHED_OUTCOMES,
    AppliedTime,
    EventFacts,
    EventOutcome,
    Journal,
    JournalBusyError,
    JournalEntry,
    normalize_event_id,
    record_key_text,
)
from engine.planning.plan import Action, Outcome, RecordKey, StepResult

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id      TEXT PRIMARY KEY,
    event_type    TEXT,
    account_key   TEXT,
    sim_keys      TEXT NOT NULL DEFAULT '[]',
    received_at   TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    event_time    TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    duplicates    INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT NOT NULL,
    steps         TEXT NOT NULL DEFAULT '[]',
    error_code    TEXT,
    error_message TEXT,
    body          TEXT
);
CREATE INDEX IF NOT EXISTS events_by_received_at ON events (received_at);
CREATE INDEX IF NOT EXISTS events_by_outcome ON events (outcome, received_at);
CREATE INDEX IF NOT EXISTS events_by_account_key ON events (account_key);
CREATE TABLE IF NOT EXISTS records (
    module            TEXT NOT NULL,
    key_field         TEXT NOT NULL,
    key_value         TEXT NOT NULL,
    record_id         TEXT,
    newest_event_time TEXT,
    newest_event_id   TEXT,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (module, key_field, key_value)
) WITHOUT ROWID;
"""

# Parameter 8 is `replace_after` as text: a remembered newest time after it is replaced even
# by an older time. Without `replace_after` it is later than any time, so nothing moves back.
RECORD_UPSERT = """
INSERT INTO records (module, key_field, key_value, record_id, newest_event_time, newest_event_id,
                     updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (module, key_field, key_value) DO UPDATE SET
    record_id = coalesce(excluded.record_id, record_id),
    newest_event_id = CASE
        WHEN excluded.newest_event_time IS NOT NULL AND (newest_event_time IS NULL
             OR excluded.newest_event_time > newest_event_time OR newest_event_time > ?8)
        THEN excluded.newest_event_id ELSE newest_event_id END,
    newest_event_time = CASE
        WHEN excluded.newest_event_time IS NOT NULL AND (newest_event_time IS NULL
             OR excluded.newest_event_time > newest_event_time OR newest_event_time > ?8)
        THEN excluded.newest_event_time ELSE newest_event_time END,
    updated_at = excluded.updated_at
"""

EVENT_COLUMNS = (
    "event_id, event_type, account_key, sim_keys, received_at, updated_at, event_time, "
    "attempts, duplicates, outcome, steps, error_code, error_message"
)


class _ThreadConnection:
    """One thread's connection. It is closed when the thread ends and its holder is collected."""

    __slots__ = ("__weakref__", "connection", "pid")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.pid = os.getpid()
        weakref.finalize(self, connection.close)


class JournalSchemaError(RuntimeError):
    """The journal file was written by a newer version of the connector."""


class SqliteJournal(Journal):
    """Journal stored in one SQLite file, safe across threads and processes on one host.

    SQLite file locks are not reliable on network file systems, so the file must be on a local
    disk. Several connector processes on one host may share it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_seconds: float = 10.0,
        synchronous: str = "FULL",
        read_only: bool = False,
    ) -> None:
        """Open the journal at `path`, creating and migrating it unless `read_only` is true.

        A read-only journal never writes, so a user who may only read the file can list it.
        NOTE: SQLite (3.22 and later) opens a WAL file read-only only when its `-wal` and
        `-shm` files exist, as while the service runs, or when that user can create them.
        Raises `JournalSchemaError` for a journal of a newer connector, `sqlite3.DatabaseError`
        for a file that is not an SQLite database, and `OSError` for a path that cannot be
        opened.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = Path(path)
        self.read_only = read_only
        self._busy_timeout_seconds = busy_timeout_seconds
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()
        self._connections_lock = threading.Lock()

        if read_only:
            self._check_version(self._connection())
            return
        self._create_file()
        with self._transaction() as connection:
            self._migrate(connection)

    # Connection handling

    def _create_file(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(descriptor)
        if self.path.stat().st_mode & 0o777 != 0o600:
            # An existing file may have been created by hand or by an older tool.
            os.chmod(self.path, 0o600)
            logger.warning("journal file permissions set to 0600", extra={"path": str(self.path)})

    def _connection(self) -> sqlite3.Connection:
        current: _ThreadConnection | None = getattr(self._local, "current", None)
        # A connection must not cross a fork: the child opens its own.
        if current is not None and current.pid == os.getpid():
            return current.connection

        if self.read_only:
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=self._busy_timeout_seconds,
                isolation_level=None,
                check_same_thread=False,
            )
        else:
            connection = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_seconds,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_seconds * 1000)}")
        current = _ThreadConnection(connection)
        self._local.current = current
        with self._connections_lock:
            self._connections.add(current)
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with _busy_as_error(self.path, self._busy_timeout_seconds):
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _read(self, query: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """Return the rows of one read query, outside any write transaction."""
        with _busy_as_error(self.path, self._busy_timeout_seconds):
            return self._connection().execute(query, parameters).fetchall()

    def _check_version(self, connection: sqlite3.Connection) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalSchemaError(
                f"journal {self.path} has schema version {version}, newer than "
                f"{SCHEMA_VERSION}; upgrade the connector or use another JOURNAL_PATH"
            )

    def _migrate(self, connection: sqlite3.Connection) -> None:
        self._check_version(connection)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def connection_count(self) -> int:
        """Number of open connections, one per live thread that used the journal."""
        with self._connections_lock:
            return len(self._connections)

    def close(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
        for current in connections:
            current.connection.close()
        self._local = threading.local()

    # Events

    def get(self, event_id: str, *, with_body: bool = False) -> JournalEntry | None:
        columns = EVENT_COLUMNS + (", body" if with_body else "")
        rows = self._read(
            f"SELECT {columns} FROM events WHERE event_id = ?",  # noqa: S608
            (normalize_event_id(event_id),),
        )
        if not rows:
            return None
        return _entry_from_row(rows[0])

    def receive(self, facts: EventFacts) -> None:
        now = _now_text()
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO events (event_id, event_type, account_key, sim_keys, received_at, "
                "updated_at, event_time, outcome, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event_id) DO NOTHING",
                (
                    *_facts_columns(facts),
                    now,
                    now,
                    _time_text(facts.event_time),
                    EventOutcome.RECEIVED,
                    _body_text(facts.body),
                ),
            )

    def start_attempt(self, facts: EventFacts) -> tuple[JournalEntry, bool]:
        now = _now_text()
        with self._transaction() as connection:
            row = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ?",  # noqa: S608
                (normalize_event_id(facts.event_id),),
            ).fetchone()
            if row is not None and EventOutcome(row[9]) in FINISHED_OUTCOMES:
                return _entry_from_row(row), False

            self._upsert_event(connection, facts, now, EventOutcome.IN_PROGRESS, attempts=1)
            started = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ?",  # noqa: S608
                (normalize_event_id(facts.event_id),),
            ).fetchone()
        return _entry_from_row(started), True

    def record_step(
        self,
        event_id: str,
        result: StepResult,
        *,
        key: RecordKey | None,
        event_time: datetime | None,
        applied: bool,
        replace_after: datetime | None = None,
    ) -> None:
        now = _now_text()
        event_id = normalize_event_id(event_id)
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT steps FROM events WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is not None:
                steps = [step for step in json.loads(row[0]) if step["step_id"] != result.step_id]
                steps.append(_step_to_json(result))
                connection.execute(
                    "UPDATE events SET steps = ?, updated_at = ? WHERE event_id = ?",
                    (json.dumps(steps), now, event_id),
                )

            if key is None:
                return
            mark_time = _time_text(event_time) if applied else None
            connection.execute(
                RECORD_UPSERT,
                (
                    key.module,
                    key.field,
                    record_key_text(key.value),
                    result.record_id,
                    mark_time,
                    event_id if mark_time else None,
                    now,
                    _time_text(replace_after) or _FAR_FUTURE_TEXT,
                ),
            )

    def finish(
        self, event_id: str, outcome: EventOutcome, steps: Sequence[StepResult]
    ) -> JournalEntry:
        now = _now_text()
        event_id = normalize_event_id(event_id)
        with self._transaction() as connection:
            connection.execute(
                "UPDATE events SET outcome = ?, steps = ?, updated_at = ?, error_code = NULL, "
                "error_message = NULL WHERE event_id = ?",
                (outcome, json.dumps([_step_to_json(step) for step in steps]), now, event_id),
            )
            row = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ?",  # noqa: S608
                (event_id,),
            ).fetchone()
        if row is None:
            raise KeyError(f"event {event_id} is not in the journal")
        return _entry_from_row(row)

    def fail(
        self,
        facts: EventFacts,
        *,
        error_code: str,
        error_message: str,
        count_attempt: bool,
    ) -> None:
        now = _now_text()
        with self._transaction() as connection:
            self._upsert_event(
                connection, facts, now, EventOutcome.FAILED, attempts=1 if count_attempt else 0
            )
            connection.execute(
                "UPDATE events SET error_code = ?, error_message = ? WHERE event_id = ?",
                (error_code, error_message, normalize_event_id(facts.event_id)),
            )

    def note_duplicate(self, event_id: str) -> None:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE events SET duplicates = duplicates + 1, updated_at = ? WHERE event_id = ?",
                (_now_text(), normalize_event_id(event_id)),
            )

    def _upsert_event(
        self,
        connection: sqlite3.Connection,
        facts: EventFacts,
        now: str,
        outcome: EventOutcome,
        *,
        attempts: int,
    ) -> None:
        # Facts learned later (the event time after planning) fill in what the first arrival
        # could not know; a missing body keeps the stored one.
        connection.execute(
            "INSERT INTO events (event_id, event_type, account_key, sim_keys, received_at, "
            "updated_at, event_time, attempts, outcome, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id) DO UPDATE SET "
            "event_type = coalesce(excluded.event_type, event_type), "
            "account_key = coalesce(excluded.account_key, account_key), "
            "sim_keys = CASE WHEN excluded.sim_keys = '[]' THEN sim_keys "
            "ELSE excluded.sim_keys END, "
            "updated_at = excluded.updated_at, "
            "event_time = coalesce(excluded.event_time, event_time), "
            "attempts = attempts + excluded.attempts, "
            "outcome = excluded.outcome, "
            "body = coalesce(excluded.body, body)",
            (
                *_facts_columns(facts),
                now,
                now,
                _time_text(facts.event_time),
                attempts,
                outcome,
                _body_text(facts.body),
            ),
        )

    def list_events(
        self,
        *,
        unfinished_only: bool = False,
        since: datetime | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
    ) -> list[JournalEntry]:
        conditions: list[str] = []
        parameters: list[Any] = []
        if unfinished_only:
            conditions.append(f"outcome IN ({', '.join('?' for _ in UNFINISHED_OUTCOMES)})")
            parameters.extend(sorted(UNFINISHED_OUTCOMES))
        if since is not None:
            conditions.append("received_at >= ?")
            parameters.append(_time_text(since))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        direction = "ASC" if oldest_first else "DESC"
        query = (
            f"SELECT {EVENT_COLUMNS} FROM events {where} "  # noqa: S608
            f"ORDER BY received_at {direction}, event_id"
        )
        if limit is not None:
            query += " LIMIT ?"
            parameters.append(limit)

        rows = self._read(query, parameters)
        return [_entry_from_row(row) for row in rows]

    # Records

    def record_id(self, module: str, field: str, value: Any) -> str | None:
        rows = self._read(
            "SELECT record_id FROM records WHERE module = ? AND key_field = ? AND key_value = ?",
            (module, field, record_key_text(value)),
        )
        return rows[0][0] if rows else None

    def newest_applied(self, keys: Sequence[RecordKey]) -> dict[RecordKey, AppliedTime]:
        applied: dict[RecordKey, AppliedTime] = {}
        for key in keys:
            rows = self._read(
                "SELECT newest_event_time, newest_event_id FROM records WHERE module = ? "
                "AND key_field = ? AND key_value = ? AND newest_event_time IS NOT NULL",
                (key.module, key.field, record_key_text(key.value)),
            )
            if rows:
                applied[key] = AppliedTime(_parse_time(rows[0][0]), rows[0][1])
        return applied


@contextmanager
def _busy_as_error(path: Path, timeout_seconds: float) -> Iterator[None]:
    """Convert an SQLite busy or locked error to `JournalBusyError`.

    SQLite raises either one when another connection holds a lock past the busy timeout.
    """
    try:
        yield
    except sqlite3.OperationalError as error:
        # The primary result code is the low byte, so extended codes such as
        # SQLITE_BUSY_SNAPSHOT match too.
        code = getattr(error, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise
        raise JournalBusyError(
            f"journal {path} stayed locked by another connection for {timeout_seconds:g} s"
        ) from error


# Later than any time `_time_text` returns, whose text starts with a four-digit year.
_FAR_FUTURE_TEXT = "99999"


def _now_text() -> str:
    return _time_text(datetime.now(UTC)) or ""


def _time_text(moment: datetime | None) -> str | None:
    """Return a UTC time as fixed-width ISO 8601 text, so that text order is time order."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _facts_columns(facts: EventFacts) -> tuple[str, str | None, str | None, str]:
    return (
        normalize_event_id(facts.event_id),
        facts.event_type,
        facts.account_key,
        json.dumps(list(facts.sim_keys)),
    )


def _body_text(body: Any) -> str | None:
    if body is None:
        return None
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _step_to_json(step: StepResult) -> dict[str, Any]:
    return {
        "step_id": step.step_id,
        "module": step.module,
        "action": str(step.action),
        "outcome": str(step.outcome),
        "record_id": step.record_id,
        "reason": step.reason,
        "zoho_calls": step.zoho_calls,
    }


def _step_from_json(data: dict[str, Any]) -> StepResult:
    return StepResult(
        step_id=data["step_id"],
        module=data["module"],
        action=Action(data["action"]),
        outcome=Outcome(data["outcome"]),
        record_id=data.get("record_id"),
        reason=data.get("reason"),
        zoho_calls=int(data.get("zoho_calls", 0)),
    )


def _entry_from_row(row: Sequence[Any]) -> JournalEntry:
    body = json.loads(row[13]) if len(row) > 13 and row[13] is not None else None
    return JournalEntry(
        event_id=row[0],
        event_type=row[1],
        account_key=row[2],
        sim_keys=tuple(json.loads(row[3])),
        received_at=_parse_time(row[4]),
        updated_at=_parse_time(row[5]),
        event_time=_parse_time(row[6]) if row[6] else None,
        attempts=row[7],
        duplicates=row[8],
        outcome=EventOutcome(row[9]),
        steps=tuple(_step_from_json(step) for step in json.loads(row[10])),
        error_code=row[11],
        error_message=row[12],
        body=body,
    )
