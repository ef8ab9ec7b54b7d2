"""Journal facts: keys from the plan's record keys, or from the body before planning."""

from __future__ import annotations

from typing import Any

import pytest

from engine.delivery.facts import facts_from_body, facts_from_plan
from engine.planning.plan import Action, Plan, RecordKey, RecordMatch, Step, Strategy

from .stack import make_event

EVENT_ID = "3f1c7a52-0000-4000-8000-000000000001"


def keyed_step(
    step_id: str, module: str, field: str, value: Any, *, skip_reason: str | None = None
) -> Step:
    return Step(
        id=step_id,
        action=Action.FIND_OR_CREATE,
        module=module,
        strategy=Strategy.UPSERT,
        match=RecordMatch(field, value, None),
        skip_reason=skip_reason,
    )


def plan_of(*steps: Step) -> Plan:
    keys = tuple(
        RecordKey(step.module, step.match.field, step.match.value)
        for step in steps
        if step.match is not None and step.skip_reason is None
    )
    return Plan(event_id=EVENT_ID, event_type="SIM/Replaced", steps=steps, record_keys=keys)


@pytest.mark.parametrize(
    ("plan", "account_key", "sim_keys"),
    [
        pytest.param(
            plan_of(
                keyed_step("account", "Accounts", "Account_Number", "ACC-7"),
                keyed_step("device", "Devices", "Serial", 42),
                keyed_step("spare", "Devices", "Serial", 43),
            ),
            "ACC-7",
            ("42", "43"),
            id="other modules and key fields",
        ),
        pytest.param(
            plan_of(
                keyed_step("contact", "Contacts", "I_PB", "x@msisdn", skip_reason="off"),
                keyed_step("sim", "SIM_Cards", "I_SIM_Card", 3793),
            ),
            None,
            ("3793",),
            id="skipped first step leaves no account key",
        ),
        pytest.param(
            plan_of(
                keyed_step("contact", "Contacts", "I_PB", "x@msisdn"),
                keyed_step("sim", "SIM_Cards", "I_SIM_Card", 3793),
                keyed_step("again", "SIM_Cards", "I_SIM_Card", 3793),
            ),
            "x@msisdn",
            ("3793",),
            id="repeated key listed once",
        ),
    ],
)
def test_plan_facts_follow_record_keys(
    plan: Plan, account_key: str | None, sim_keys: tuple[str, ...]
) -> None:
    # The body names another account and SIM card: the plan's keys win.
    body = make_event("facts")

    facts = facts_from_plan(body, plan)

    assert facts.event_id == EVENT_ID
    assert facts.account_key == account_key
    assert facts.sim_keys == sim_keys
    assert facts.body is body


def test_body_facts_before_planning() -> None:
    body = make_event("facts", "SIM/Replaced", i_sim_card=3793, prev_i_sim_card=5000)
    body["data"]["event_type"] = "SIM/Unknown"

    facts = facts_from_body(body)

    assert facts is not None
    assert facts.event_type == "SIM/Unknown"
    assert facts.account_key == "79123456789@msisdn"
    assert facts.sim_keys == ("3793", "5000")
