"""Journal facts of an event: its id, type and record keys.

An event the planner accepted takes its keys from the plan's record keys, so they follow the
mappings. An event that failed planning takes them from the NSPS body, where present.
"""

from __future__ import annotations

from typing import Any

from engine.journal.base import EventFacts, record_key_text
from engine.planning.plan import Plan


def event_id_of(body: Any) -> str | None:
    """Return the body's `event_id` when it is a non-empty string, else `None`."""
    if not isinstance(body, dict):
        return None
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id.strip():
        return event_id
    return None


def facts_from_plan(body: Any, plan: Plan) -> EventFacts:
    """Return the journal facts of an event that the planner accepted.

    The account key is the first record key in the module of the plan's first matching step
    (the contact, in the default mappings). The values of the other record keys (the SIM
    cards) are stored as the SIM keys.
    """
    first_module = next((step.module for step in plan.steps if step.match is not None), None)
    account = next((key for key in plan.record_keys if key.module == first_module), None)
    other_keys = [record_key_text(key.value) for key in plan.record_keys if key is not account]

    return EventFacts(
        event_id=plan.event_id,
        event_type=plan.event_type,
        account_key=record_key_text(account.value) if account is not None else None,
        sim_keys=tuple(dict.fromkeys(other_keys)),
        event_time=plan.event_time,
        body=body,
    )


def facts_from_body(body: Any) -> EventFacts | None:
    """Return the journal facts of an event that failed planning, or `None` without an id.

    The facts come from the body alone and may be partial: any part that is missing or of the
    wrong type is left out.
    """
    event_id = event_id_of(body)
    if event_id is None:
        return None

    # NOTE: without a plan there are no mappings to name the keys, so these NSPS paths are read
    # directly. They match the default mappings only.
    pb_data = _object(body, "pb_data")
    account_key = _object(pb_data, "account_info").get("id")
    sim_keys = [
        record_key_text(sim["i_sim_card"])
        for sim in (_object(pb_data, "sim_info"), _object(pb_data, "prev_sim_info"))
        if isinstance(sim.get("i_sim_card"), int | str)
    ]

    return EventFacts(
        event_id=event_id,
        event_type=_event_type_of(body),
        account_key=account_key if isinstance(account_key, str) else None,
        sim_keys=tuple(dict.fromkeys(sim_keys)),
        body=body,
    )


def _event_type_of(body: Any) -> str | None:
    event_type = _object(body, "data").get("event_type")
    return event_type if isinstance(event_type, str) else None


def _object(parent: Any, name: str) -> dict[str, Any]:
    if not isinstance(parent, dict):
        return {}
    value = parent.get(name)
    return value if isinstance(value, dict) else {}
