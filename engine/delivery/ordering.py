"""Ordering per record: an event never overwrites data that a newer event already wrote.

Each record key (module, key field, key value) remembers the event time of the newest event
applied to it. A step that writes a record whose remembered time is later than the event's
time is stale. The decision is made per step, not per event, because one event can touch
records of different accounts: a `SIM/Replaced` for account B can move a SIM card that an older,
late `SIM/Updated` for account A still links to A. That older event then still updates contact
A but leaves the SIM card as the newer event left it.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.journal.base import AppliedTime
from engine.planning.plan import Action, Outcome, Plan, RecordKey, Step

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


def stale_step_ids(plan: Plan, applied: Mapping[RecordKey, AppliedTime]) -> set[str]:
    """Return the ids of the plan's steps whose record contains data from a newer event.

    An event without a time is never stale. An event whose time equals the remembered time is
    not stale either, because two different events can share a time to the second.
    """
    if plan.event_time is None:
        return set()

    stale: set[str] = set()
    for step in plan.steps:
        key = step_key(step)
        if key is None or not writes_record(step):
            continue
        newest = applied.get(key)
        if newest is not None and plan.event_time < newest.event_time:
            stale.add(step.id)
    return stale


def is_wholly_stale(plan: Plan, stale_ids: set[str]) -> bool:
    """Return whether every step that writes a matched record is stale."""
    writing = [step.id for step in plan.steps if writes_record(step)]
    return bool(writing) and all(step_id in stale_ids for step_id in writing)
