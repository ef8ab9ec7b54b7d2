"""The journal interface: what the delivery layer stores about events and records.

The journal is the connector's memory across NSPS retries, restarts and processes. Per event it
stores the id, type, account and SIM keys, times, attempts, outcome, the result of every step that
completed, the error of the last failed attempt, and the body needed to replay the event. Per CRM
record it stores the Zoho record id learned from step results and the event time of the newest
event applied to that record.

`SqliteJournal` is the embedded backend. A backend shared by several hosts (PostgreSQL, for
example) implements the same `Journal` class; the delivery layer depends on nothing else.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.planning.plan import RecordKey, StepResult


class JournalBusyError(Exception):
    """Another connection kept the journal locked for longer than the busy timeout.

    The condition is transient: the same call can succeed once the other writer commits.
    """


class EventOutcome(StrEnum):
    """State of an event in the journal."""

    RECEIVED = "received"
    """Stored on arrival; no attempt has started yet (for example, the record lock was busy)."""

    IN_PROGRESS = "in_progress"
    """An attempt started and has not finished. After a crash the event stays in this state
    until it arrives again or is replayed."""

    PROCESSED = "processed"
    STALE = "stale"
    """Every record the event writes already contains data from a newer event."""

    IGNORED = "ignored"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Return whether a new delivery gets a duplicate response, with no Zoho call."""
        return self in FINISHED_OUTCOMES


FINISHED_OUTCOMES = frozenset({EventOutcome.PROCESSED, EventOutcome.STALE, EventOutcome.IGNORED})
UNFINISHED_OUTCOMES = frozenset(set(EventOutcome) - FINISHED_OUTCOMES)


@dataclass(frozen=True)
class EventFacts:
    """Facts about an event that the delivery layer stores when it starts an attempt."""

    event_id: str
    event_type: str | None
    account_key: str | None = None
    """Value of the plan's first record key, in the module of its first matching step.

    With the default mappings it is `pb_data.account_info.id`, the PortaBilling account
    identifier. An event that failed planning has `pb_data.account_info.id` read from its body.
    """

    sim_keys: tuple[str, ...] = ()
    """Values of the plan's other record keys, as text.

    With the default mappings they are the `i_sim_card` values of the SIM cards. An event that
    failed planning has those of `pb_data.sim_info` and `pb_data.prev_sim_info`.
    """

    event_time: datetime | None = None
    body: Any = None
    """The event as received, stored for replay. `None` keeps the stored body."""


@dataclass(frozen=True)
class JournalEntry:
    """One event as the journal stores it."""

    event_id: str
    event_type: str | None
    account_key: str | None
    sim_keys: tuple[str, ...]
    received_at: datetime
    """First arrival, UTC."""

    updated_at: datetime
    event_time: datetime | None
    attempts: int
    """Attempts that ran the event (planning it, or running its steps)."""

    duplicates: int
    """Arrivals that got a duplicate response because the event had already finished."""

    outcome: EventOutcome
    steps: tuple[StepResult, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    body: Any = field(default=None, compare=False, repr=False)
    """The stored event body, loaded only when asked for."""

    @property
    def completed_steps(self) -> dict[str, StepResult]:
        """Step results of earlier attempts, by step id, for the runner to resume from."""
        return {step.step_id: step for step in self.steps}


@dataclass(frozen=True)
class AppliedTime:
    """Event time of the newest event applied to one record."""

    event_time: datetime
    event_id: str


class Journal(ABC):
    """Durable store of events and records, safe to share between threads and processes."""

    @abstractmethod
    def get(self, event_id: str, *, with_body: bool = False) -> JournalEntry | None:
        """Return the stored event, or `None` when the event id was never journaled."""

    @abstractmethod
    def receive(self, facts: EventFacts) -> None:
        """Store an arriving event as `received` unless the event id is already journaled."""

    @abstractmethod
    def start_attempt(self, facts: EventFacts) -> tuple[JournalEntry, bool]:
        """Begin an attempt at an event, atomically.

        When the event already finished, the entry is returned unchanged with `False`, and the
        caller sends a duplicate response. Otherwise the attempt count goes up by one, the
        outcome becomes `in_progress`, the facts and body are stored, the step results of earlier
        attempts are kept, and the entry is returned with `True`.
        """

    @abstractmethod
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
        """Store one completed step at once, so a crash later in the event does not repeat it.

        The step result replaces any earlier result with the same step id. When `key` is given
        and the result carries a record id, the record id is remembered for `key`. When `applied`
        is true and `event_time` is given, the record's newest applied event time moves forward
        to `event_time`. It never moves back, unless the remembered time is after
        `replace_after`: such a time is treated as invalid and replaced.
        """

    @abstractmethod
    def finish(
        self, event_id: str, outcome: EventOutcome, steps: Sequence[StepResult]
    ) -> JournalEntry:
        """Mark an event finished with `outcome` and its final step results."""

    @abstractmethod
    def fail(
        self,
        facts: EventFacts,
        *,
        error_code: str,
        error_message: str,
        count_attempt: bool,
    ) -> None:
        """Mark an event failed with an error code and a message that carries no secret.

        The event is stored first when it was never journaled. `count_attempt` adds one attempt,
        for failures that happen before `start_attempt` (an event that fails validation).
        """

    @abstractmethod
    def note_duplicate(self, event_id: str) -> None:
        """Count one arrival of an event that had already finished."""

    @abstractmethod
    def record_id(self, module: str, field: str, value: Any) -> str | None:
        """Return the Zoho record id learned for a record key, or `None`."""

    @abstractmethod
    def newest_applied(self, keys: Sequence[RecordKey]) -> dict[RecordKey, AppliedTime]:
        """Return, for each key that has one, the time of the newest event applied to it."""

    @abstractmethod
    def list_events(
        self,
        *,
        unfinished_only: bool = False,
        since: datetime | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
    ) -> list[JournalEntry]:
        """Return events newest first by first arrival, without their bodies.

        `unfinished_only` keeps events that failed or never finished (received, in progress).
        `oldest_first` sorts oldest first instead, so `limit` keeps the oldest events.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the backend's connections."""


class KnownRecordIds:
    """The journal's record-id cache in the shape the runner expects (`RecordIdLookup`)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def get(self, module: str, field: str, value: Any) -> str | None:
        return self._journal.record_id(module, field, value)


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def normalize_event_id(event_id: str) -> str:
    """Return the text under which an event id is stored: a UUID in lower case.

    UUIDs compare case-insensitively (RFC 9562), so `3E84C79F-...` and `3e84c79f-...` name the
    same event. Any other id is stored as sent.
    """
    if _UUID.match(event_id):
        return event_id.lower()
    return event_id


def record_key_text(value: Any) -> str:
    """Return the text under which a record key value is stored.

    Whole numbers are stored in decimal whatever their JSON type, so `3793` and `3793.0` name the
    same SIM card, and a numeric key sent as a string (`"3793"`) also matches.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
