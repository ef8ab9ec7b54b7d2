"""Ordering per record: an event never overwrites data that a newer event already wrote.

Each record key (module, key field, key value) remembers the event time of the newest event
applied to it. A step that writes a record whose remembered time is later than the event's
time is stale. The decision is made per step, not per event, because one event can touch
records of different accounts: a `SIM/Replaced` for account B can move a SIM card that an older,
late `SIM/Updated` for account A still links to A. That older event then still updates contact
A but leaves the SIM card as the newer event left it.

A time further in the future than the allowed skew (`EVENT_TIME_MAX_SKEW_SECONDS`) is never
remembered, because every later event for the record would then be skipped as stale. A
remembered time that is already that far ahead (written before this check existed) is ignored
and replaced by the next event applied to the record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from engine.journal.base import AppliedTime
from engine.planning.plan import Action, Outcome, Plan, RecordKey, Step

logger = logging.getLogger(__name__)

STALE_REASON = "stale: a newer event was already applied to this record"

# Step outcomes that wrote the event's data to the record, or found it already equal.
APPLIED_OUTCOMES = frozenset(
    {Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.LINKED, Outcome.UNLINKED}
)


def step_key(step: Step) -> RecordKey | None:
    """Return the record key a step matches, or `None` for a step that matches no record."""
    if step.match is None:
        return None
    return RecordKey(step.module, step.match.field, step.match.value)


def writes_record(step: Step) -> bool:
    """Return whether the step can write the record it matches."""
    return step.match is not None and step.action is not Action.FIND and step.skip_reason is None


def recordable_event_time(plan: Plan, *, latest: datetime) -> datetime | None:
    """Return the plan's event time when it may be remembered as a record's newest time.

    A time after `latest` (the current time plus the allowed skew) is `None`, with one warning
    naming the event id, and the event is processed as an event without a time.
    """
    if plan.event_time is None or plan.event_time <= latest:
        return plan.event_time
    logger.warning(
        "event time is further in the future than the allowed skew, not used for ordering",
        extra={"event_id": plan.event_id, "event_time": plan.event_time.isoformat()},
    )
    return None


def stale_step_ids(
    plan: Plan,
    applied: Mapping[RecordKey, AppliedTime],
    *,
    event_time: datetime | None,
    latest: datetime,
) -> set[str]:
    """Return the ids of the plan's steps whose record contains data from a newer event.

    `event_time` is the plan's event time as `recordable_event_time` returns it. An event
    without a time is never stale. An event whose time equals the remembered time is not stale
    either, because two different events can share a time to the second. A remembered time
    after `latest` is ignored, with a warning naming the record and the event that set it.
    """
    if event_time is None:
        return set()

    stale: set[str] = set()
    for step in plan.steps:
        key = step_key(step)
        if key is None or not writes_record(step):
            continue
        newest = applied.get(key)
        if newest is None:
            continue
        if newest.event_time > latest:
            logger.warning(
                "remembered event time of a record is further in the future than the allowed "
                "skew, ignored",
                extra={
                    "zoho_module": key.module,
                    "newest_event_id": newest.event_id,
                    "newest_event_time": newest.event_time.isoformat(),
                },
            )
            continue
        if event_time < newest.event_time:
            stale.add(step.id)
    return stale


def is_wholly_stale(plan: Plan, stale_ids: set[str]) -> bool:
    """Return whether every step that writes a matched record is stale."""
    writing = [step.id for step in plan.steps if writes_record(step)]
    return bool(writing) and all(step_id in stale_ids for step_id in writing)
