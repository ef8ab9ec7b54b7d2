"""Each event type end to end: real server, planner, processor, runner and emulator over HTTP."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.emulator import EmulatorServer

from .conftest import EXAMPLES, Stack, load_example

CONTACT_KEY = "79123456789@msisdn"


def seed(emulator: EmulatorServer, module: str, record: dict[str, Any]) -> str:
    """Insert a record through the emulator's Zoho API, as if someone had created it in the CRM."""
    response = requests.post(
        f"{emulator.url}/crm/v8/{module}",
        json={"data": [record]},
        headers={"Authorization": f"Zoho-oauthtoken {emulator.issue_access_token()}"},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["data"][0]["details"]["id"])


def seed_account(emulator: EmulatorServer, *sims: tuple[int, bool]) -> dict[str, str]:
    """Seed the account's contact and SIM cards (`(i_sim_card, linked)`); return their ids."""
    ids = {"contact": seed(emulator, "Contacts", {"Last_Name": "Existing", "I_PB": CONTACT_KEY})}
    for i_sim_card, linked in sims:
        record: dict[str, Any] = {"Name": f"SIM {i_sim_card}", "I_SIM_Card": i_sim_card}
        if linked:
            record["Related_Contact"] = {"id": ids["contact"]}
        ids[str(i_sim_card)] = seed(emulator, "SIM_Cards", record)
    return ids


def steps_of(response: requests.Response) -> list[tuple[str, str]]:
    return [(step["step"], step["outcome"]) for step in response.json()["steps"]]


def sim_links(stack: Stack) -> dict[int, str | None]:
    """Return each SIM card's linked contact id, by `I_SIM_Card`."""
    links: dict[int, str | None] = {}
    for record in stack.records("SIM_Cards"):
        lookup = record.get("Related_Contact")
        links[record["I_SIM_Card"]] = lookup["id"] if lookup else None
    return links


def the_contact(stack: Stack) -> dict[str, Any]:
    contacts = stack.records("Contacts")
    assert len(contacts) == 1
    return contacts[0]


@pytest.mark.parametrize(
    ("example", "sim_status"),
    [
        pytest.param("sim-created.json", "Available", id="SIM/Created"),
        pytest.param("sim-updated.json", "Active", id="SIM/Updated"),
        pytest.param("nsps-sim-updated-enriched.json", "Active", id="published enriched example"),
        pytest.param("nsps-sim-updated-named.json", "Active", id="published named example"),
    ],
)
def test_assign_event_on_fresh_crm(stack: Stack, example: str, sim_status: str) -> None:
    event = load_example(example)

    response = stack.post(event)

    assert response.status_code == 202
    assert response.json()["outcome"] == "processed"
    assert response.json()["event_id"] == event["event_id"]
    assert steps_of(response) == [("contact", "created"), ("sim", "created")]
    contact = the_contact(stack)
    assert contact["I_PB"] == CONTACT_KEY
    assert contact["Bill_Status_PB"] == "Open"
    assert contact["Billing_Model_PB"] == "Credit Account"
    assert contact["Blocked_PB"] is False
    assert contact["I_Account_PB"] == 1
    assert "Phone" not in contact
    assert sim_links(stack) == {3793: contact["id"]}
    [sim] = stack.records("SIM_Cards")
    assert sim["IMSI"] == "001010000020349"
    assert sim["MSISDN"] == "79123456789"
    assert sim["Status"] == sim_status


def test_nameless_account_gets_id_as_last_name(stack: Stack) -> None:
    response = stack.post(load_example("nsps-sim-updated-enriched.json"))

    assert response.status_code == 202
    contact = the_contact(stack)
    assert contact["Last_Name"] == CONTACT_KEY
    assert "First_Name" not in contact


@pytest.mark.parametrize(
    "example",
    [
        pytest.param("sim-created.json", id="SIM/Created"),
        pytest.param("sim-updated.json", id="SIM/Updated"),
    ],
)
def test_assign_event_on_existing_crm(stack: Stack, example: str) -> None:
    ids = seed_account(stack.emulator, (3793, False))

    response = stack.post(load_example(example))

    assert response.status_code == 202
    assert steps_of(response) == [("contact", "updated"), ("sim", "updated")]
    contact = the_contact(stack)
    assert contact["id"] == ids["contact"]
    assert contact["Last_Name"] == "Koval"
    assert contact["First_Name"] == "Olena"
    assert sim_links(stack) == {3793: ids["contact"]}


def test_deleted_on_fresh_crm_creates_no_sim(stack: Stack) -> None:
    response = stack.post(load_example("sim-deleted.json"))

    assert response.status_code == 202
    assert steps_of(response) == [("contact", "created"), ("sim", "skipped")]
    assert the_contact(stack)["I_PB"] == CONTACT_KEY
    assert stack.records("SIM_Cards") == []


def test_deleted_on_existing_crm_unlinks_sim(stack: Stack) -> None:
    ids = seed_account(stack.emulator, (3793, True))

    response = stack.post(load_example("sim-deleted.json"))

    assert response.status_code == 202
    assert steps_of(response) == [("contact", "updated"), ("sim", "unlinked")]
    assert the_contact(stack)["id"] == ids["contact"]
    assert sim_links(stack) == {3793: None}


def test_replaced_on_fresh_crm_creates_both_sims(stack: Stack) -> None:
    response = stack.post(load_example("sim-replaced.json"))

    assert response.status_code == 202
    assert steps_of(response) == [
        ("contact", "created"),
        ("previous_sim", "created"),
        ("new_sim", "created"),
    ]
    contact = the_contact(stack)
    assert sim_links(stack) == {3793: None, 3794: contact["id"]}


def test_replaced_on_existing_crm_moves_link(stack: Stack) -> None:
    ids = seed_account(stack.emulator, (3793, True), (3794, False))

    response = stack.post(load_example("sim-replaced.json"))

    assert response.status_code == 202
    assert steps_of(response) == [
        ("contact", "updated"),
        ("previous_sim", "unlinked"),
        ("new_sim", "linked"),
    ]
    assert sim_links(stack) == {3793: None, 3794: ids["contact"]}


def test_full_lifecycle_in_time_order(stack: Stack) -> None:
    names = ["sim-created.json", "sim-updated.json", "sim-replaced.json", "sim-deleted.json"]

    statuses = [stack.post(load_example(name)).status_code for name in names]

    assert statuses == [202, 202, 202, 202]
    assert len(stack.records("Contacts")) == 1
    assert sim_links(stack) == {3793: None, 3794: the_contact(stack)["id"]}


def readme_example_order() -> list[str]:
    """Return the example files of the README's numbered list, in the order it gives."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return re.findall(r"^\d+\. `([a-z-]+\.json)`", readme, flags=re.MULTILINE)


def test_readme_lists_every_example() -> None:
    order = readme_example_order()
    published_twin = "nsps-sim-updated-enriched.json"

    assert sorted([*order, published_twin]) == sorted(path.name for path in EXAMPLES.glob("*.json"))


def test_examples_have_own_event_ids() -> None:
    ids = [json.loads((EXAMPLES / name).read_text())["event_id"] for name in readme_example_order()]

    assert len(set(ids)) == len(ids)


def test_examples_in_readme_order_are_processed(stack: Stack) -> None:
    order = readme_example_order()

    outcomes = [stack.post(load_example(name)).json()["outcome"] for name in order]

    assert order[0] == "sim-created.json"
    assert outcomes == ["processed"] * 5


def test_published_twin_example_is_duplicate(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.post(load_example("nsps-sim-updated-named.json"))

    with caplog.at_level(logging.WARNING, logger="engine.delivery"):
        response = stack.post(load_example("nsps-sim-updated-enriched.json"))

    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("event id already processed with a different body")
    ]
    assert response.json()["outcome"] == "duplicate"
    assert len(warnings) == 1


def test_duplicate_event_makes_no_zoho_write(stack: Stack) -> None:
    event = load_example("sim-updated.json")
    first = stack.post(event)
    writes_after_first = len(stack.writes())

    second = stack.post(event)

    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json()["outcome"] == "duplicate"
    assert len(stack.writes()) == writes_after_first
    assert len(stack.records("Contacts")) == 1


def test_older_event_does_not_overwrite_newer(stack: Stack) -> None:
    newer = load_example("sim-updated.json")
    older = load_example("sim-created.json")
    older["pb_data"]["account_info"]["lastname"] = "Old-Name"

    stack.post(newer)
    response = stack.post(older)

    assert response.status_code == 202
    assert response.json()["outcome"] == "stale"
    assert the_contact(stack)["Last_Name"] == "Koval"
