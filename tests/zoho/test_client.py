"""Records API calls of `ZohoClient` against the emulator over real HTTP."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.emulator import EmulatorServer
from engine.errors import (
    ZohoAuthError,
    ZohoRateLimitError,
    ZohoRequestError,
    ZohoUnavailableError,
)
from engine.metrics import REGISTRY
from engine.planning.planner import Planner
from engine.service.wiring import _readiness_probe
from engine.zoho import ZohoClient
from engine.zoho.criteria import equals_criteria, escape_criteria_value, values_equal
from engine.zoho.retry import parse_retry_after

HOSTILE_VALUES = [
    pytest.param("a(b),c\\d", id="brackets comma backslash"),
    pytest.param('O\'Brien "Bob"', id="quotes"),
    pytest.param("user+tag@example.com", id="at and plus"),
    pytest.param("+44 20 7946 0958", id="leading plus and spaces"),
    pytest.param("Müller-Lüdenscheidt", id="non ascii"),
    pytest.param("山田 太郎", id="cjk"),
    pytest.param("50% & #1 ; a:b", id="percent ampersand hash colon"),
    pytest.param("Smith, Jr.", id="comma and dot"),
]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        pytest.param("Burns,B", "Burns\\,B", id="comma"),
        pytest.param("Patricia(Boyle)", "Patricia\\(Boyle\\)", id="brackets"),
        pytest.param("a\\b", "a\\\\b", id="backslash"),
        pytest.param("a(b),c\\d", "a\\(b\\)\\,c\\\\d", id="all four"),
        pytest.param(12345678901234567, "12345678901234567", id="long number"),
        pytest.param(True, "true", id="boolean"),
    ],
)
def test_escape_criteria_value(value: object, escaped: str) -> None:
    assert escape_criteria_value(value) == escaped


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_search_exact_hostile_values(
    value: str, emulator: EmulatorServer, client: ZohoClient
) -> None:
    expected = client.insert("Contacts", [{"Last_Name": "Wanted", "I_PB": value}])[0]
    # Zoho's `equals` matches words, so the search also returns this record.
    client.insert("Contacts", [{"Last_Name": "Decoy", "I_PB": f"{value} extra"}])

    found = client.search_exact("Contacts", "I_PB", value)

    assert [record["id"] for record in found] == [expected.id]
    sent = emulator.request_log("search")[-1]["query"]["criteria"]
    assert sent == equals_criteria("I_PB", value)


def test_search_criteria_escaped_on_the_wire(emulator: EmulatorServer, client: ZohoClient) -> None:
    client.search_exact("Contacts", "I_PB", "a(b),c\\d")

    sent = emulator.request_log("search")[0]["query"]["criteria"]
    assert sent == r"(I_PB:equals:a\(b\)\,c\\d)"


def test_search_no_match_is_empty_list(emulator: EmulatorServer, client: ZohoClient) -> None:
    assert client.search_exact("Contacts", "I_PB", "nobody") == []
    assert emulator.request_log("search")[0]["status"] == 204


def test_search_number_field(client: ZohoClient) -> None:
    created = client.insert("SIM_Cards", [{"Name": "SIM 1", "I_SIM_Card": 123456789012345678}])

    found = client.search_exact("SIM_Cards", "I_SIM_Card", 123456789012345678)

    assert [record["id"] for record in found] == [created[0].id]


def test_search_pages_through_word_matches(emulator: EmulatorServer, client: ZohoClient) -> None:
    # 200 decoys fill the first search page; the exact match is on the second.
    for batch in range(2):
        decoys = [
            {"Last_Name": "Decoy", "I_PB": f"key extra{batch}-{index}"} for index in range(100)
        ]
        client.insert("Contacts", decoys)
    expected = client.insert("Contacts", [{"Last_Name": "Wanted", "I_PB": "key"}])[0]

    found = client.search_exact("Contacts", "I_PB", "key")

    assert [record["id"] for record in found] == [expected.id]
    assert [entry["query"]["page"] for entry in emulator.request_log("search")] == ["1", "2"]


def test_get_missing_record_is_none(emulator: EmulatorServer, client: ZohoClient) -> None:
    assert client.get("Contacts", "5725767000009999999") is None
    assert emulator.request_log("get")[0]["status"] == 204


def test_record_ids_are_nineteen_digit_strings(client: ZohoClient) -> None:
    result = client.insert("Contacts", [{"Last_Name": "Id"}])[0]

    assert isinstance(result.id, str)
    assert len(result.id) == 19
    record = client.get("Contacts", result.id)
    assert record is not None
    assert record["id"] == result.id


@pytest.mark.parametrize(
    "record_id",
    [pytest.param(5725767000000411001, id="int id"), pytest.param("57257x", id="not digits")],
)
def test_get_rejects_non_string_ids(record_id: Any, client: ZohoClient) -> None:
    with pytest.raises(ValueError, match="must be a string of digits"):
        client.get("Contacts", record_id)


def test_lookup_sent_as_string_id(emulator: EmulatorServer, client: ZohoClient) -> None:
    contact = client.insert("Contacts", [{"Last_Name": "Owner"}])[0]

    sim = client.insert("SIM_Cards", [{"Name": "SIM", "Related_Contact": {"id": contact.id}}])[0]

    body = emulator.request_log("insert")[-1]["body"]
    assert body["data"][0]["Related_Contact"] == {"id": contact.id}
    stored = client.get("SIM_Cards", str(sim.id))
    assert stored is not None
    assert stored["Related_Contact"]["id"] == contact.id


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        pytest.param(None, "absent", id="default runs workflows"),
        pytest.param((), [], id="empty suppresses workflows"),
        pytest.param(("workflow",), ["workflow"], id="only workflow"),
    ],
)
def test_trigger_sent_as_configured(
    trigger: tuple[str, ...] | None,
    expected: Any,
    emulator: EmulatorServer,
    client_factory: Callable[..., ZohoClient],
) -> None:
    client = client_factory(trigger=trigger)

    client.insert("Contacts", [{"Last_Name": "T"}])
    client.upsert("Contacts", [{"Last_Name": "T", "I_PB": "t"}], ["I_PB"])

    for entry in emulator.request_log("insert") + emulator.request_log("upsert"):
        assert entry["body"].get("trigger", "absent") == expected


def test_insert_mixed_batch_results_in_order(emulator: EmulatorServer, client: ZohoClient) -> None:
    results = client.insert(
        "Contacts",
        [
            {"Last_Name": "Good"},
            {"Last_Name": "Bad", "Phone": "call me maybe"},
            {"First_Name": "No last name"},
        ],
    )

    assert [result.code for result in results] == ["SUCCESS", "INVALID_DATA", "MANDATORY_NOT_FOUND"]
    assert [result.api_name for result in results] == [None, "Phone", "Last_Name"]
    assert results[0].id is not None
    assert emulator.request_log("insert")[0]["status"] == 207


def test_insert_all_failed_returns_results(emulator: EmulatorServer, client: ZohoClient) -> None:
    results = client.insert("Contacts", [{"Last_Name": "x" * 81}])

    assert results[0].code == "INVALID_DATA"
    assert results[0].details["maximum_length"] == 80
    assert emulator.request_log("insert")[0]["status"] == 400


def test_update_by_id(client: ZohoClient) -> None:
    created = client.insert("Contacts", [{"Last_Name": "Before"}])[0]

    results = client.update("Contacts", [{"id": created.id, "Last_Name": "After"}])

    assert results[0].ok is True
    assert results[0].id == created.id
    record = client.get("Contacts", str(created.id))
    assert record is not None
    assert record["Last_Name"] == "After"


def test_upsert_insert_then_update(client: ZohoClient) -> None:
    first = client.upsert("Contacts", [{"Last_Name": "U", "I_PB": "acc-1"}], ["I_PB"])[0]
    second = client.upsert("Contacts", [{"First_Name": "F", "I_PB": "acc-1"}], ["I_PB"])[0]

    assert (first.action, first.duplicate_field) == ("insert", None)
    assert (second.action, second.duplicate_field) == ("update", "I_PB")
    assert second.id == first.id


def test_unknown_module_is_request_error(client: ZohoClient) -> None:
    with pytest.raises(ZohoRequestError) as raised:
        client.insert("Contacs", [{"Last_Name": "X"}])

    assert "INVALID_MODULE" in raised.value.message


def test_more_than_100_records_rejected(client: ZohoClient) -> None:
    with pytest.raises(ValueError, match="at most 100 records"):
        client.insert("Contacts", [{"Last_Name": str(index)} for index in range(101)])


def test_concurrency_capped_by_client(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    # The emulator responds 429 above 3 requests in flight, so a client capped at 3 never gets it.
    emulator.update_settings(concurrency_limit=3, latency_seconds=0.1)
    client = client_factory(max_concurrency=3, max_retries=0)
    client.get("Contacts", "5725767000000411001")
    barrier = threading.Barrier(12)
    failures: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            client.get("Contacts", "5725767000000411001")
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert {entry["status"] for entry in emulator.request_log("get")} == {204}


def test_read_timeout_ends_at_deadline(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    # Zoho responds after 3 s, well within the 60 s read timeout but after the deadline.
    client = client_factory(timeout_seconds=60.0)
    client.get("Contacts", "5725767000000411001")
    emulator.update_settings(latency_seconds=3.0)

    with pytest.raises(ZohoUnavailableError) as raised:
        client.get("Contacts", "5725767000000411001", deadline=time.monotonic() + 0.3)

    assert raised.value.retry_after is not None
    assert raised.value.retry_after >= 1.0


def test_slot_wait_ends_at_deadline(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    client = client_factory(max_concurrency=1)
    client.get("Contacts", "5725767000000411001")
    emulator.add_fault(kind="timeout", hold_seconds=60.0, operation="get")
    holder = threading.Thread(target=client.get, args=("Contacts", "5725767000000411001"))
    holder.start()
    while len(emulator.request_log("get")) < 2:
        time.sleep(0.01)

    with pytest.raises(ZohoRateLimitError) as raised:
        client.get("Contacts", "5725767000000411001", deadline=time.monotonic() + 0.2)
    emulator.stop()
    holder.join()

    assert "concurrent call slots" in raised.value.message
    assert raised.value.retry_after is not None
    assert len(emulator.request_log("get")) == 2


def test_rate_limit_retried_with_retry_after(emulator: EmulatorServer, client: ZohoClient) -> None:
    emulator.add_fault(
        operation="get",
        status=429,
        count=2,
        headers={"Retry-After": "0"},
        body={
            "code": "TOO_MANY_REQUESTS",
            "details": {},
            "message": "slow down",
            "status": "error",
        },
    )

    assert client.get("Contacts", "5725767000000411001") is None
    assert [entry["status"] for entry in emulator.request_log("get")] == [429, 429, 204]


def test_deadline_stops_retries_with_retry_after(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    emulator.add_fault(
        operation="get",
        status=429,
        count=5,
        headers={"Retry-After": "30"},
        body={
            "code": "TOO_MANY_REQUESTS",
            "details": {},
            "message": "slow down",
            "status": "error",
        },
    )

    with pytest.raises(ZohoRateLimitError) as raised:
        client.get("Contacts", "5725767000000411001", deadline=time.monotonic() + 5)

    assert raised.value.retry_after == 30.0
    assert len(emulator.request_log("get")) == 1


def test_check_ready_reports_token_and_api(emulator: EmulatorServer, client: ZohoClient) -> None:
    report = client.check_ready("Contacts", "I_PB")

    assert report["ready"] is True
    assert report["token"] == "ok"
    assert report["api"] == "ok"
    assert report["api_domain"] == emulator.url


def test_check_ready_reuses_api_probe(emulator: EmulatorServer, client: ZohoClient) -> None:
    client.check_ready("Contacts", "I_PB")
    client.check_ready("Contacts", "I_PB")

    assert len(emulator.request_log("search")) == 1


def test_check_ready_probes_given_module(emulator: EmulatorServer, client: ZohoClient) -> None:
    report = client.check_ready("SIM_Cards", "I_SIM_Card")

    searches = emulator.request_log("search")
    assert report["ready"] is True
    assert len(searches) == 1
    assert searches[0]["module"] == "SIM_Cards"
    assert searches[0]["query"]["criteria"].startswith("(I_SIM_Card:equals:")


def test_check_ready_without_module_checks_token(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    report = client.check_ready(None, None)

    assert report["ready"] is True
    assert report["token"] == "ok"
    assert report["api"] == "unchecked"
    assert emulator.request_log("search") == []


def test_service_probes_first_planned_module() -> None:
    mappings = Planner.from_directory().mappings

    assert _readiness_probe(mappings) == ("Contacts", "I_PB")


def test_check_ready_with_bad_credentials(client_factory: Callable[..., ZohoClient]) -> None:
    report = client_factory(client_secret="wrong").check_ready("Contacts", "I_PB")

    assert report["ready"] is False
    assert report["token"] == "failed"
    assert "ZOHO_CRM_CLIENT_SECRET" in report["error"]


@pytest.mark.parametrize(
    ("found", "expected", "equal"),
    [
        pytest.param("ABC Inc", "ABC", False, id="word match is not exact"),
        pytest.param("abc", "ABC", False, id="case differs"),
        pytest.param("123", 123, True, id="number returned as string"),
        pytest.param(123.0, 123, True, id="number returned as float"),
        pytest.param(
            {"id": "5725767000000411001"}, "5725767000000411001", True, id="lookup compares id"
        ),
        pytest.param(None, "x", False, id="missing value"),
        pytest.param(True, 1, False, id="boolean is not a number"),
    ],
)
def test_values_equal(found: Any, expected: Any, equal: bool) -> None:
    assert values_equal(found, expected) is equal


def metric_value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_calls_and_retries_counted(emulator: EmulatorServer, client: ZohoClient) -> None:
    calls_before = metric_value("connector_zoho_calls_total", {"operation": "get", "status": "204"})
    limited_before = metric_value(
        "connector_zoho_calls_total", {"operation": "get", "status": "429"}
    )
    retries_before = metric_value("connector_zoho_retries_total", {"operation": "get"})
    emulator.add_fault(
        operation="get",
        status=429,
        count=1,
        body={
            "code": "TOO_MANY_REQUESTS",
            "details": {},
            "message": "slow down",
            "status": "error",
        },
    )

    client.get("Contacts", "5725767000000411001")

    assert (
        metric_value("connector_zoho_calls_total", {"operation": "get", "status": "204"})
        == calls_before + 1
    )
    assert (
        metric_value("connector_zoho_calls_total", {"operation": "get", "status": "429"})
        == limited_before + 1
    )
    assert metric_value("connector_zoho_retries_total", {"operation": "get"}) == retries_before + 1


def test_retry_after_read_from_empty_429(emulator: EmulatorServer, client: ZohoClient) -> None:
    emulator.add_fault(operation="get", status=429, count=5, headers={"Retry-After": "45"})

    with pytest.raises(ZohoRateLimitError) as raised:
        client.get("Contacts", "5725767000000411001", deadline=time.monotonic() + 5)

    assert raised.value.retry_after == 45.0


@pytest.mark.parametrize(
    ("header", "retry_after"),
    [
        pytest.param("1e308", 3600.0, id="huge number cut to one hour"),
        pytest.param("86400", 3600.0, id="one day cut to one hour"),
        pytest.param("inf", None, id="infinity ignored"),
        pytest.param("nan", None, id="nan ignored"),
        pytest.param("-5", 0.0, id="negative counts as zero"),
        pytest.param("Wed, 21 Oct 2026 07:28:00 GMT", None, id="http date ignored"),
    ],
)
def test_parse_retry_after_bounded(header: str, retry_after: float | None) -> None:
    assert parse_retry_after(header) == retry_after


@pytest.mark.parametrize(
    ("header", "retry_after"),
    [
        pytest.param("1e308", 3600.0, id="huge Retry-After"),
        pytest.param("inf", None, id="infinite Retry-After"),
        pytest.param("nan", None, id="nan Retry-After"),
    ],
)
def test_unusable_retry_after_gives_finite_wait(
    emulator: EmulatorServer, client: ZohoClient, header: str, retry_after: float | None
) -> None:
    emulator.add_fault(
        operation="get",
        status=429,
        count=5,
        headers={"Retry-After": header},
        body={
            "code": "TOO_MANY_REQUESTS",
            "details": {},
            "message": "slow down",
            "status": "error",
        },
    )

    with pytest.raises(ZohoRateLimitError) as raised:
        client.get("Contacts", "5725767000000411001", deadline=time.monotonic() + 5)

    sent = raised.value.retry_after
    assert sent is not None
    assert math.isfinite(sent)
    if retry_after is None:
        # Without a usable header the wait is the short jittered backoff of the test settings.
        assert sent == 1.0
    else:
        assert sent == retry_after


UPSERT_SUCCESS_WITHOUT_ID = {
    "code": "SUCCESS",
    "status": "success",
    "message": "record added",
    "action": "insert",
    "duplicate_field": None,
    "details": {"Modified_Time": "2026-01-01T00:00:00+00:00"},
}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"data": ["x"]},
            "returned a result that is not a JSON object (str)",
            id="string element",
        ),
        pytest.param(
            {"data": [None]},
            "returned a result that is not a JSON object (NoneType)",
            id="null element",
        ),
        pytest.param(
            {"data": [UPSERT_SUCCESS_WITHOUT_ID]},
            "reported success without a record id of digits in details.id",
            id="success without details id",
        ),
        pytest.param(
            {"data": [{**UPSERT_SUCCESS_WITHOUT_ID, "details": {"id": "abc"}}]},
            "reported success without a record id of digits in details.id",
            id="success with id not digits",
        ),
        pytest.param(
            {"data": [{**UPSERT_SUCCESS_WITHOUT_ID, "details": "x"}]},
            "reported success without a record id of digits in details.id",
            id="success with details not an object",
        ),
    ],
)
def test_malformed_write_result_is_request_error(
    emulator: EmulatorServer, client: ZohoClient, body: dict[str, Any], message: str
) -> None:
    emulator.add_fault(operation="upsert", status=200, body=body)

    with pytest.raises(ZohoRequestError) as raised:
        client.upsert("SIM_Cards", [{"Name": "SIM 1", "I_SIM_Card": 1}], ["I_SIM_Card"])

    assert message in raised.value.message
    assert raised.value.message.startswith("Zoho CRM upsert on SIM_Cards ")
    assert raised.value.status == 500
    assert len(emulator.request_log("upsert")) == 1


def test_numeric_record_id_read_as_string(emulator: EmulatorServer, client: ZohoClient) -> None:
    element = {**UPSERT_SUCCESS_WITHOUT_ID, "details": {"id": 5725767000000411001}}
    emulator.add_fault(operation="upsert", status=200, body={"data": [element]})

    result = client.upsert("SIM_Cards", [{"Name": "SIM 1", "I_SIM_Card": 1}], ["I_SIM_Card"])[0]

    assert result.id == "5725767000000411001"


def test_revoked_refresh_token_clears_readiness(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    assert client.check_ready("Contacts", "I_PB")["ready"] is True
    emulator.revoke_refresh_token()
    emulator.expire_tokens()

    # The event's call gets 401 INVALID_TOKEN, and the refresh that follows fails.
    with pytest.raises(ZohoAuthError):
        client.get("Contacts", "5725767000000411001")
    report = client.check_ready("Contacts", "I_PB")

    assert report["ready"] is False
    assert report["token"] == "failed"
    assert "ZOHO_CRM_REFRESH_TOKEN" in report["error"]


def test_revoked_refresh_token_clears_token_readiness(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    assert client.check_ready(None, None)["ready"] is True
    emulator.revoke_refresh_token()
    emulator.expire_tokens()

    with pytest.raises(ZohoAuthError):
        client.get("Contacts", "5725767000000411001")

    assert client.check_ready(None, None)["ready"] is False


def test_rejected_call_clears_readiness(emulator: EmulatorServer, client: ZohoClient) -> None:
    assert client.check_ready("Contacts", "I_PB")["ready"] is True
    emulator.add_fault(
        operation="search",
        status=401,
        count=2,
        body={
            "code": "OAUTH_SCOPE_MISMATCH",
            "details": {},
            "message": "invalid oauth scope to access this URL",
            "status": "error",
        },
    )

    with pytest.raises(ZohoAuthError):
        client.search_exact("Contacts", "I_PB", "x")
    report = client.check_ready("Contacts", "I_PB")

    assert report["ready"] is False
    assert report["api"] == "failed"
    assert "OAUTH_SCOPE_MISMATCH" in report["error"]
    # Once a probe succeeds again, the service is ready.
    assert client.check_ready("Contacts", "I_PB")["ready"] is True
    assert len(emulator.request_log("search")) == 4


def test_rejected_token_not_reused_from_token_file(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient], tmp_path: Path
) -> None:
    client = client_factory(token_file=tmp_path / "zoho-token.json")
    assert client.check_ready("Contacts", "I_PB")["ready"] is True
    emulator.revoke_refresh_token()
    emulator.expire_tokens()

    with pytest.raises(ZohoAuthError):
        client.get("Contacts", "5725767000000411001")
    report = client.check_ready(None, None)

    assert report["ready"] is False
    assert report["token"] == "failed"


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        pytest.param("get", {"data": ["x"]}, id="get with a string record"),
        pytest.param(
            "search",
            {"data": [None], "info": {"more_records": False}},
            id="search with a null record",
        ),
    ],
)
def test_malformed_read_result_is_request_error(
    emulator: EmulatorServer, client: ZohoClient, operation: str, body: dict[str, Any]
) -> None:
    emulator.add_fault(operation=operation, status=200, body=body)

    with pytest.raises(ZohoRequestError) as raised:
        if operation == "get":
            client.get("Contacts", "5725767000000411001")
        else:
            client.search_exact("Contacts", "I_PB", "x")

    assert "returned a record that is not a JSON object" in raised.value.message
    assert raised.value.status == 500
