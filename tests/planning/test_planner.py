"""The planner on hand-built mappings: every option of the mapping language, and its errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ErrorDetail, EventValidationError, MappingRuntimeError, NoActionPlanError
from engine.mapping import MappingInvalidError
from engine.planning.plan import (
    Action,
    FieldValue,
    LookupLink,
    RecordKey,
    RecordMatch,
    Strategy,
    WhenAbsent,
)
from engine.planning.planner import Planner

REPOSITORY = Path(__file__).parents[2]
PUBLISHED_EXAMPLE = Path(__file__).parent / "golden" / "sim-updated-published-example"

MODULES = """
modules:
  Contacts:
    strategy: upsert
    key_field: I_PB
    duplicate_check_fields: [I_PB]
  SIM_Cards:
    strategy: search
    key_field: I_SIM_Card
"""


def make_planner(tmp_path: Path, mapping_yaml: str) -> Planner:
    """Return a planner on the shipped module definitions plus the given mapping file."""
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    shutil.copy(REPOSITORY / "mappings" / "crm-modules.yaml", mappings)
    (mappings / "modules.yaml").write_text(MODULES, encoding="utf-8")
    (mappings / "test.yaml").write_text(mapping_yaml, encoding="utf-8")
    return Planner.from_directory(mappings)


def contact_plan(fields_yaml: str, step_yaml: str = "") -> str:
    return f"""
field_mappings:
  contact:
    module: Contacts
    input: $.pb_data.account_info
    fields:
{fields_yaml}
action_plans:
  Account/Updated:
    steps:
      - id: contact
        action: find_or_create
        match: {{source: id}}
        write: contact
{step_yaml}
"""


def account_event(**account: Any) -> dict[str, Any]:
    return {
        "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
        "data": {"event_type": "Account/Updated", "variables": {"i_env": 1}},
        "pb_data": {"account_info": {"id": "79123456789@msisdn", **account}},
    }


def planned_fields(planner: Planner, event: dict[str, Any]) -> list[FieldValue]:
    return list(planner.plan(event).steps[0].fields)


KEY = FieldValue("I_PB", "79123456789@msisdn", ("pb_data", "account_info", "id"))


def test_default_mappings_list_event_types() -> None:
    planner = Planner.from_directory()

    assert planner.event_types == ("SIM/Created", "SIM/Deleted", "SIM/Replaced", "SIM/Updated")


def test_published_example_contact_step() -> None:
    planner = Planner.from_directory()
    event = json.loads((PUBLISHED_EXAMPLE / "event.json").read_text(encoding="utf-8"))

    contact = planner.plan(event).steps[0]

    assert contact.action is Action.FIND_OR_CREATE
    assert contact.strategy is Strategy.UPSERT
    assert contact.duplicate_check_fields == ("I_PB",)
    assert contact.match == RecordMatch(
        "I_PB", "79123456789@msisdn", ("pb_data", "account_info", "id")
    )
    assert contact.fields[0] == FieldValue(
        "Last_Name", "79123456789@msisdn", ("pb_data", "account_info", "id"), on_create_only=True
    )


@pytest.mark.parametrize(
    ("fields_yaml", "account", "expected"),
    [
        pytest.param(
            "      - {field: Last_Name, source: lastname, default_on_create: {source: id}}",
            {"lastname": "Koval"},
            [FieldValue("Last_Name", "Koval", ("pb_data", "account_info", "lastname")), KEY],
            id="source present wins over the create-only fallback",
        ),
        pytest.param(
            "      - {field: Last_Name, source: lastname, default_on_create: {value: Unknown}}",
            {"lastname": ""},
            [FieldValue("Last_Name", "Unknown", None, on_create_only=True), KEY],
            id="constant create-only fallback for an empty string",
        ),
        pytest.param(
            "      - {field: Email, source: email}",
            {"email": None},
            [KEY],
            id="null source is skipped",
        ),
        pytest.param(
            "      - {field: Email, source: email, when_empty: clear}",
            {},
            [FieldValue("Email", None, ("pb_data", "account_info", "email")), KEY],
            id="when_empty clear writes null",
        ),
        pytest.param(
            "      - {field: Product_Name_PB, source: product_name, default: Basic}",
            {"product_name": ""},
            [FieldValue("Product_Name_PB", "Basic", None), KEY],
            id="default for an empty source",
        ),
        pytest.param(
            "      - {field: Blocked_PB, source: blocked}",
            {"blocked": True},
            [FieldValue("Blocked_PB", True, ("pb_data", "account_info", "blocked")), KEY],
            id="boolean stays a boolean",
        ),
        pytest.param(
            "      - {field: I_Account_PB, source: i_account}",
            {"i_account": 123456789012345678},
            [
                FieldValue(
                    "I_Account_PB", 123456789012345678, ("pb_data", "account_info", "i_account")
                ),
                KEY,
            ],
            id="long number of 18 digits stays a number",
        ),
        pytest.param(
            "      - {field: Phone, source: i_account, type: phone}",
            {"i_account": 380661310764},
            [FieldValue("Phone", "380661310764", ("pb_data", "account_info", "i_account")), KEY],
            id="number written to a phone field becomes text",
        ),
        pytest.param(
            "      - {field: First_Name, source: firstname, max_length: 5, on_too_long: truncate}",
            {"firstname": "Oleksandra"},
            [FieldValue("First_Name", "Oleks", ("pb_data", "account_info", "firstname")), KEY],
            id="truncate to max_length",
        ),
        pytest.param(
            "      - field: First_Name\n"
            "        source: firstname\n"
            "        condition: input.status == 'active'",
            {"firstname": "Olena", "status": "closed"},
            [KEY],
            id="false condition leaves the field out",
        ),
        pytest.param(
            '      - {field: First_Name, expression: "input.firstname | upper"}',
            {"firstname": "olena"},
            [FieldValue("First_Name", "OLENA", None), KEY],
            id="expression with a filter",
        ),
        pytest.param(
            "      - {field: First_Name, expression: input.firstname.title()}",
            {"firstname": "olena"},
            [FieldValue("First_Name", "Olena", None), KEY],
            id="expression with a method call",
        ),
        pytest.param(
            "      - {field: Product_Name_PB, source: $.handler_id}",
            {},
            [KEY],
            id="absolute source that is absent",
        ),
        pytest.param(
            "      - {field: Bill_Status_PB, source: bill_status, value_map: {open: Open}}",
            {"bill_status": "open"},
            [FieldValue("Bill_Status_PB", "Open", ("pb_data", "account_info", "bill_status")), KEY],
            id="value map",
        ),
        pytest.param(
            "      - {field: Email, source: email}",
            {},
            [KEY],
            id="key field added for upsert when the mapping does not write it",
        ),
        pytest.param(
            "      - field: Blocked_PB\n"
            "        source: service_features.0.effective_flag_value\n"
            "        value_map: {Y: true, N: false}",
            {"service_features": [{"name": "netaccess_policy", "effective_flag_value": "N"}]},
            [
                FieldValue(
                    "Blocked_PB",
                    False,
                    ("pb_data", "account_info", "service_features", 0, "effective_flag_value"),
                ),
                KEY,
            ],
            id="value map keys Y and N stay strings",
        ),
        pytest.param(
            "      - {field: Account_Status_PB, source: blocked, "
            "value_map: {true: Blocked, false: Active}}",
            {"blocked": True},
            [
                FieldValue("Account_Status_PB", "Blocked", ("pb_data", "account_info", "blocked")),
                KEY,
            ],
            id="boolean event value through a value map",
        ),
    ],
)
def test_field_values(
    tmp_path: Path, fields_yaml: str, account: dict[str, Any], expected: list[FieldValue]
) -> None:
    planner = make_planner(tmp_path, contact_plan(fields_yaml))

    assert planned_fields(planner, account_event(**account)) == expected


@pytest.mark.parametrize(
    ("fields_yaml", "account", "expected"),
    [
        pytest.param(
            "      - {field: First_Name, source: firstname}",
            {"firstname": "O" * 41},
            ErrorDetail(
                ("pb_data", "account_info", "firstname"),
                "is 41 characters long, but Zoho field First_Name allows 40",
                "value_error.too_long",
            ),
            id="text longer than the field",
        ),
        pytest.param(
            "      - {field: Email, source: email, when_empty: fail}",
            {"email": ""},
            ErrorDetail(
                ("pb_data", "account_info", "email"),
                "field required: Zoho field Email must not be empty",
                "missing",
            ),
            id="when_empty fail",
        ),
        pytest.param(
            "      - {field: I_Account_PB, source: i_account}",
            {"i_account": 1234567890123456789},
            ErrorDetail(
                ("pb_data", "account_info", "i_account"),
                "has more than the 18 digits Zoho stores for Zoho field I_Account_PB",
                "type_error",
            ),
            id="number too long for a long integer",
        ),
        pytest.param(
            "      - {field: First_Name, source: $.pb_data.access_policy_info.attributes}",
            {},
            ErrorDetail(
                ("pb_data", "access_policy_info", "attributes"),
                "must be text, not array for Zoho field First_Name",
                "type_error",
            ),
            id="list written to a text field",
        ),
    ],
)
def test_field_value_rejected(
    tmp_path: Path, fields_yaml: str, account: dict[str, Any], expected: ErrorDetail
) -> None:
    planner = make_planner(tmp_path, contact_plan(fields_yaml))
    event = account_event(**account)
    event["pb_data"]["access_policy_info"] = {"attributes": [{"name": "cs_profile"}]}

    with pytest.raises(EventValidationError) as caught:
        planner.plan(event)

    assert list(caught.value.details) == [expected]


@pytest.mark.parametrize(
    ("fields_yaml", "step_yaml", "expected"),
    [
        pytest.param(
            "      - {field: First_Name, expression: input.firstname + 1}",
            "",
            ErrorDetail(
                ("pb_data", "account_info"),
                "expression 'input.firstname + 1' failed: TypeError for Zoho field First_Name",
                "value_error.expression",
            ),
            id="field expression adding a number to text",
        ),
    ],
)
def test_failing_expression_rejects_event(
    tmp_path: Path, fields_yaml: str, step_yaml: str, expected: ErrorDetail
) -> None:
    planner = make_planner(tmp_path, contact_plan(fields_yaml, step_yaml))

    with pytest.raises(EventValidationError) as caught:
        planner.plan(account_event(firstname="Olena", assigned_addons=[{"name": "UHD"}]))

    assert list(caught.value.details) == [expected]


def test_sandboxed_expression_is_mapping_error(tmp_path: Path) -> None:
    planner = make_planner(
        tmp_path,
        contact_plan(
            "      - {field: I_PB, source: id}",
            "        condition: input.firstname * 200000",
        ),
    )

    with pytest.raises(MappingRuntimeError) as caught:
        planner.plan(account_event(firstname="Olena", assigned_addons=[{"name": "UHD"}]))

    assert caught.value.message == (
        "expression 'input.firstname * 200000' in the mappings failed: SecurityError: "
        "repeating a value of size 5 200000 times gives a size of 1000000, over the limit of "
        "100000; fix the expression and run zoho-connector validate"
    )


def test_unmapped_value_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fields = "      - {field: Bill_Status_PB, source: bill_status, value_map: {open: Open}}"
    planner = make_planner(tmp_path, contact_plan(fields))

    with caplog.at_level(logging.WARNING, logger="engine.planning.fields"):
        for _ in range(3):
            planner.plan(account_event(bill_status="frozen"))

    records = [r for r in caplog.records if r.name == "engine.planning.fields"]
    assert len(records) == 1
    assert records[0].__dict__["value"] == "frozen"
    assert records[0].__dict__["field"] == "Bill_Status_PB"


def test_unmapped_free_text_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fields = "      - {field: First_Name, source: firstname, value_map: {n/a: Unknown}}"
    planner = make_planner(tmp_path, contact_plan(fields))

    with caplog.at_level(logging.WARNING, logger="engine.planning.fields"):
        for name in ("Olena", "Mykola", "Olena"):
            planner.plan(account_event(firstname=name))

    records = [r for r in caplog.records if r.name == "engine.planning.fields"]
    assert len(records) == 1
    assert "value" not in records[0].__dict__
    assert records[0].__dict__["field"] == "First_Name"
    logged = " ".join(str(vars(record)) for record in records)
    assert "Olena" not in logged
    assert "Mykola" not in logged


def test_unmapped_value_written_unchanged(tmp_path: Path) -> None:
    fields = "      - {field: Bill_Status_PB, source: bill_status, value_map: {open: Open}}"
    planner = make_planner(tmp_path, contact_plan(fields))

    values = planned_fields(planner, account_event(bill_status="frozen"))

    assert values[0] == FieldValue(
        "Bill_Status_PB", "frozen", ("pb_data", "account_info", "bill_status")
    )


def test_step_condition_false_skips(tmp_path: Path) -> None:
    step = "        condition: \"input.status != 'closed'\""
    planner = make_planner(tmp_path, contact_plan("      - {field: I_PB, source: id}", step))

    plan = planner.plan(account_event(status="closed"))

    assert plan.steps[0].skip_reason == "condition is false: input.status != 'closed'"
    assert plan.record_keys == ()


def test_missing_match_value_rejected(tmp_path: Path) -> None:
    planner = make_planner(tmp_path, contact_plan("      - {field: I_PB, source: id}"))
    event = account_event()
    event["pb_data"]["account_info"]["id"] = ""

    with pytest.raises(EventValidationError) as caught:
        planner.plan(event)

    assert list(caught.value.details) == [
        ErrorDetail(
            ("pb_data", "account_info", "id"),
            "field required: step contact finds its Contacts record by I_PB",
            "missing",
        )
    ]


def test_absent_input_rejected_by_default(tmp_path: Path) -> None:
    planner = make_planner(tmp_path, contact_plan("      - {field: I_PB, source: id}"))
    event = account_event()
    event["pb_data"]["account_info"] = None

    with pytest.raises(EventValidationError) as caught:
        planner.plan(event)

    assert list(caught.value.details) == [
        ErrorDetail(("pb_data", "account_info"), "field required by step contact", "missing")
    ]


SEARCH_PLAN = """
field_mappings:
  contact:
    module: Contacts
    input: $.pb_data.account_info
    fields:
      - {field: I_PB, source: id}
  sim_card:
    module: SIM_Cards
    input: $.pb_data.sim_info
    fields:
      - {field: Name, value: SIM}
action_plans:
  Account/Updated:
    steps:
      - id: contact
        action: find
        match: {source: id}
        module: Contacts
        input: $.pb_data.account_info
      - id: sim
        action: update
        match: {source: i_sim_card}
        write: sim_card
        when_input_absent: skip
        lookups: {Related_Contact: contact}
ignore: [Account/Blocked]
"""


def test_search_strategy_and_find_step(tmp_path: Path) -> None:
    planner = make_planner(tmp_path, SEARCH_PLAN)
    event = account_event()
    event["pb_data"]["sim_info"] = {"i_sim_card": 3793}

    plan = planner.plan(event)

    assert plan.steps[0].action is Action.FIND
    assert plan.steps[0].when_absent is WhenAbsent.FAIL
    assert plan.steps[0].fields == (KEY,)
    assert plan.steps[1].strategy is Strategy.SEARCH
    assert plan.steps[1].when_absent is WhenAbsent.SKIP
    assert plan.steps[1].fields == (FieldValue("Name", "SIM", None),)
    assert plan.steps[1].links == (LookupLink("Related_Contact", "contact"),)
    assert plan.record_keys == (
        RecordKey("Contacts", "I_PB", "79123456789@msisdn"),
        RecordKey("SIM_Cards", "I_SIM_Card", 3793),
    )


def test_ignored_event_type(tmp_path: Path) -> None:
    planner = make_planner(tmp_path, SEARCH_PLAN)
    event = account_event()
    event["data"]["event_type"] = "Account/Blocked"

    plan = planner.plan(event)

    assert plan.ignored is True
    assert plan.steps == ()
    assert planner.event_types == ("Account/Blocked", "Account/Updated")


def test_unknown_event_type_has_no_plan() -> None:
    planner = Planner.from_directory()
    event = account_event()
    event["data"]["event_type"] = "SIM/Update"

    with pytest.raises(NoActionPlanError) as caught:
        planner.plan(event)

    assert caught.value.message == (
        "No action plan for event type 'SIM/Update' (did you mean \"SIM/Updated\"?). The "
        "mappings plan or ignore: SIM/Created, SIM/Deleted, SIM/Replaced, SIM/Updated."
    )


def test_invalid_event_rejected_before_planning() -> None:
    planner = Planner.from_directory()

    with pytest.raises(EventValidationError) as caught:
        planner.plan({"event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb"})

    assert list(caught.value.details) == [ErrorDetail(("data",), "field required", "missing")]


def test_invalid_mappings_raise_findings(tmp_path: Path) -> None:
    with pytest.raises(MappingInvalidError) as caught:
        make_planner(tmp_path, contact_plan("      - {field: Frist_Name, source: firstname}"))

    assert [f.as_text() for f in caught.value.findings] == [
        f"{tmp_path}/mappings/test.yaml:7:17: unknown-field: Contacts has no field Frist_Name "
        '(did you mean "First_Name"?); fields are defined in crm-modules.yaml'
    ]
