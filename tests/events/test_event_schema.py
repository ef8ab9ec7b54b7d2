"""The NSPS event schema: what it accepts, and the exact details of what it rejects."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ErrorDetail, EventValidationError
from engine.events import DEFAULT_SCHEMAS_DIR, SCHEMA_FILE_NAME, EventValidator

GOLDEN = Path(__file__).parents[1] / "planning" / "golden"
PUBLISHED_EXAMPLE = GOLDEN / "sim-updated-published-example" / "event.json"
NAMED_EXAMPLE = GOLDEN / "sim-updated-named" / "event.json"
SHIPPED = EventValidator(
    json.loads((DEFAULT_SCHEMAS_DIR / SCHEMA_FILE_NAME).read_text(encoding="utf-8"))
)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def event(event_type: str, **pb_data: Any) -> dict[str, Any]:
    return {
        "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
        "data": {"event_type": event_type, "variables": {}},
        "pb_data": pb_data,
    }


ACCOUNT = {"id": "79123456789@msisdn"}
SIM = {"i_sim_card": 3793}


def rejected_details(body: Any) -> list[ErrorDetail]:
    with pytest.raises(EventValidationError) as caught:
        SHIPPED.validate(body)
    return list(caught.value.details)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(load(PUBLISHED_EXAMPLE), id="published example without names"),
        pytest.param(load(NAMED_EXAMPLE), id="example with names"),
        pytest.param(event("SIM/Created", account_info=ACCOUNT, sim_info=SIM), id="SIM/Created"),
        pytest.param(event("SIM/Deleted", account_info=ACCOUNT, sim_info=SIM), id="SIM/Deleted"),
        pytest.param(
            event("SIM/Replaced", account_info=ACCOUNT, sim_info=SIM, prev_sim_info=SIM),
            id="SIM/Replaced with both SIM cards",
        ),
        pytest.param(
            event("SIM/Replaced", account_info=ACCOUNT, prev_sim_info=SIM),
            id="SIM/Replaced with only the previous SIM",
        ),
        pytest.param(
            event("SIM/Replaced", account_info=ACCOUNT, sim_info=SIM, prev_sim_info=None),
            id="SIM/Replaced with a null previous SIM",
        ),
        pytest.param(
            event("Account/Blocked"), id="unknown event type without pb_data requirements"
        ),
        pytest.param(
            event(
                "SIM/Updated",
                account_info={**ACCOUNT, "bill_status": "open", "status": "customer_limited"},
                sim_info={**SIM, "status": "active"},
            ),
            id="enum values outside the documented lists",
        ),
        pytest.param(
            event(
                "SIM/Updated",
                account_info={**ACCOUNT, "firstname": None, "email": None, "blocked": None},
                sim_info={**SIM, "imsi": None, "msisdn": None},
                access_policy_info=None,
                product_info=None,
            ),
            id="nulls in optional fields",
        ),
        pytest.param(
            {
                **event("SIM/Updated", account_info={**ACCOUNT, "x": [1]}, sim_info=SIM),
                "new_top_level": {"a": 1},
                "handler_id": None,
                "created_at": None,
            },
            id="unknown fields everywhere",
        ),
        pytest.param(
            event("SIM/Updated", account_info=ACCOUNT, sim_info={"i_sim_card": 9007199254740991}),
            id="i_sim_card of 2^53 - 1",
        ),
    ],
)
def test_valid_event_is_returned_unchanged(body: dict[str, Any]) -> None:
    original = copy.deepcopy(body)

    assert SHIPPED.validate(body) == original


def test_large_sim_card_id_stays_int() -> None:
    body = event("SIM/Updated", account_info=ACCOUNT, sim_info={"i_sim_card": 9007199254740991})

    value = SHIPPED.validate(body)["pb_data"]["sim_info"]["i_sim_card"]

    assert type(value) is int
    assert value == 9007199254740991


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            event("SIM/Updated", sim_info=SIM),
            [("pb_data", "account_info"), "field required", "missing"],
            id="SIM/Updated without account_info",
        ),
        pytest.param(
            event("SIM/Created", account_info={"id": ""}, sim_info=SIM),
            [("pb_data", "account_info", "id"), "must not be empty", "value_error.empty"],
            id="SIM/Created with an empty account id",
        ),
        pytest.param(
            event("SIM/Created", account_info={"id": None}, sim_info=SIM),
            [
                ("pb_data", "account_info", "id"),
                "must not be null, expected string",
                "missing",
            ],
            id="SIM/Created with a null account id",
        ),
        pytest.param(
            event("SIM/Deleted", account_info=ACCOUNT, sim_info={"imsi": "1"}),
            [("pb_data", "sim_info", "i_sim_card"), "field required", "missing"],
            id="SIM/Deleted without i_sim_card",
        ),
        pytest.param(
            event("SIM/Deleted", account_info=ACCOUNT),
            [("pb_data", "sim_info"), "field required", "missing"],
            id="SIM/Deleted without sim_info",
        ),
        pytest.param(
            event("SIM/Replaced", account_info=ACCOUNT, sim_info=None, prev_sim_info=None),
            [
                ("pb_data",),
                "needs sim_info or prev_sim_info (or both), each with i_sim_card",
                "value_error.any_of",
            ],
            id="SIM/Replaced without either SIM card",
        ),
        pytest.param(
            event("SIM/Replaced", account_info=ACCOUNT, sim_info=SIM, prev_sim_info={}),
            [("pb_data", "prev_sim_info", "i_sim_card"), "field required", "missing"],
            id="SIM/Replaced with a previous SIM lacking i_sim_card",
        ),
        pytest.param(
            event("SIM/Updated", account_info=ACCOUNT, sim_info={"i_sim_card": "3793"}),
            [("pb_data", "sim_info", "i_sim_card"), "must be integer, not string", "type_error"],
            id="i_sim_card as a string",
        ),
        pytest.param(
            {"event_id": "not-a-uuid", "data": {"event_type": "Account/Blocked"}},
            [("event_id",), "has an invalid format (a UUID)", "value_error.pattern"],
            id="event_id that is not a UUID",
        ),
        pytest.param(
            {"event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb", "data": {"variables": {}}},
            [("data", "event_type"), "field required", "missing"],
            id="event without event_type",
        ),
        pytest.param(
            {
                "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
                "data": {"event_type": "X", "variables": []},
            },
            [("data", "variables"), "must be object or null, not array", "type_error"],
            id="variables as a list",
        ),
    ],
)
def test_invalid_event_detail(body: dict[str, Any], expected: list[Any]) -> None:
    loc, msg, error_type = expected

    details = rejected_details(body)

    assert details == [ErrorDetail(loc=loc, msg=msg, type=error_type)]


def test_every_problem_is_reported() -> None:
    body = {"data": {"event_type": "SIM/Created"}, "pb_data": {"account_info": {}}}

    details = rejected_details(body)

    assert [detail.loc for detail in details] == [
        ("event_id",),
        ("pb_data", "account_info", "id"),
        ("pb_data", "sim_info"),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {},
            [
                ErrorDetail(loc=("data",), msg="field required", type="missing"),
                ErrorDetail(loc=("event_id",), msg="field required", type="missing"),
            ],
            id="empty object",
        ),
        pytest.param(
            event("SIM/Updated"),
            [
                ErrorDetail(loc=("pb_data", "account_info"), msg="field required", type="missing"),
                ErrorDetail(loc=("pb_data", "sim_info"), msg="field required", type="missing"),
            ],
            id="SIM/Updated with empty pb_data",
        ),
    ],
)
def test_missing_siblings_each_reported(body: Any, expected: list[ErrorDetail]) -> None:
    assert rejected_details(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param([], "Invalid event: the body must be a JSON object, not array", id="array"),
        pytest.param("x", "Invalid event: the body must be a JSON object, not string", id="string"),
        pytest.param(None, "Invalid event: the body must be a JSON object, not null", id="null"),
    ],
)
def test_body_not_an_object(body: Any, message: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        SHIPPED.validate(body)

    assert caught.value.message == message
    assert list(caught.value.details) == [
        ErrorDetail(loc=(), msg="must be an object", type="type_error")
    ]


def test_rejection_message_never_contains_values() -> None:
    body = event("SIM/Updated", account_info={"id": 12345678}, sim_info=SIM)

    with pytest.raises(EventValidationError) as caught:
        SHIPPED.validate(body)

    assert "12345678" not in json.dumps(caught.value.to_body())


PERSONAL_VALUE = "Olena Koval"


def rule_schema(rule: dict[str, Any] | bool) -> dict[str, Any]:
    return {"type": "object", "properties": {"firstname": rule}}


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        pytest.param(
            {"maxLength": 3}, PERSONAL_VALUE, "must be at most 3 characters long", id="too long"
        ),
        pytest.param(
            {"maxLength": 1},
            PERSONAL_VALUE,
            "must be at most 1 character long",
            id="longer than one character",
        ),
        pytest.param(
            {"minLength": 20}, PERSONAL_VALUE, "must be at least 20 characters long", id="too short"
        ),
        pytest.param(
            {"enum": ["a", "b"]}, PERSONAL_VALUE, 'must be one of: "a", "b"', id="not in enum"
        ),
        pytest.param({"const": "x"}, PERSONAL_VALUE, 'must be "x"', id="not the constant"),
        pytest.param({"maximum": 10}, 12345678, "must be at most 10", id="above maximum"),
        pytest.param(
            {"not": {"type": "string"}},
            PERSONAL_VALUE,
            "matches a form the schema does not allow",
            id="forbidden form",
        ),
        pytest.param(
            {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            PERSONAL_VALUE,
            "does not match any of the allowed forms",
            id="no allowed form",
        ),
        pytest.param(False, PERSONAL_VALUE, "is not allowed here", id="false schema"),
        pytest.param(
            {"items": False},
            [PERSONAL_VALUE],
            "has more items than the schema allows",
            id="extra items",
        ),
        pytest.param(
            {"unevaluatedItems": False},
            [PERSONAL_VALUE],
            "breaks the schema's unevaluatedItems rule",
            id="rule without its own message",
        ),
    ],
)
def test_rule_message_omits_value(rule: Any, value: Any, expected: str) -> None:
    validator = EventValidator(rule_schema(rule))
    body = {"firstname": value}

    with pytest.raises(EventValidationError) as caught:
        validator.validate(body)

    assert [detail.msg for detail in caught.value.details] == [expected]
    received = value[0] if isinstance(value, list) else value
    assert str(received) not in json.dumps(caught.value.to_body())


@pytest.mark.parametrize(
    ("schema", "body", "message"),
    [
        pytest.param(
            {"maxProperties": 0},
            {"a": 1},
            "Invalid event: $: must have at most 0 fields",
            id="problem at the event root",
        ),
        pytest.param(
            {"required": ["a", "b", "c", "d"]},
            {},
            "Invalid event: a: field required; b: field required; c: field required (and 1 more)",
            id="more than three problems",
        ),
    ],
)
def test_invalid_event_message(schema: dict[str, Any], body: Any, message: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        EventValidator(schema).validate(body)

    assert caught.value.message == message
