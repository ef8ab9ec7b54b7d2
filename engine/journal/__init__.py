"""The journal: events and records the connector has seen, kept across retries and restarts."""

from engine.journal.base import (
    FINISHED_OUTCOMES,
    UNFINISHED_OUTCOMES,
    AppliedTime,
    EventFacts,
    EventOutcome,
    Journal,
    JournalBusyError,
    JournalEntry,
    KnownRecordIds,
)
from engine.journal.sqlite import SqliteJournal

__all__ = [
    "FINISHED_OUTCOMES",
    "UNFINISHED_OUTCOMES",
    "AppliedTime",
    "EventFacts",
    "EventOutcome",
    "Journal",
    "JournalBusyError",
    "JournalEntry",
    "KnownRecordIds",
    "SqliteJournal",
]
