"""Every row of the NSPS response table over real HTTP, with the records left in the CRM."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from engine.emulator import EmulatorServer
from engine.runner import Runner
from engine.service.server import ServiceServer
from engine.service.wiring import build_service

from .conftest import API_TOKEN, Stack, load_example, make_settings

WRITES_AND_SEARCHES = ("insert", "update", "upsert", "search", "get")


def assert_crm_untouched(stack: Stack) -> None:
    assert stack.records("Contacts") == []
    assert stack.records("SIM_Cards") == []


def no_record_calls(stack: Stack) -> bool:
    return not [
        entry for entry in stack.emulator.request_log() if entry["operation"] in WRITES_AND_SEARCHES
    ]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param(None, "missing Authorization header: send 'Bearer <API_TOKEN>'", id="missing"),
        pytest.param("not-the-token", "invalid Bearer token", id="wrong"),
    ],
)
def test_bad_token_is_401(stack: Stack, token: str | None, message: str) -> None:
    response = stack.post(load_example("sim-updated.json"), token=token)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "message": message,
        "error": "Unauthorized",
        "type": "AUTHENTICATION_ERROR",
        "code": "unauthorized",
    }
    assert no_record_calls(stack)
    assert_crm_untouched(stack)


def test_unknown_path_is_404(stack: Stack) -> None:
    response = requests.post(
        f"{stack.url}/events", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10
    )

    assert response.status_code == 404
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert response.json()["message"] == (
        "no resource at /events: the endpoints are POST /process-event, GET /health, "
        "GET /ready, GET /metrics"
    )


def test_wrong_method_is_405(stack: Stack) -> None:
    response = requests.put(
        f"{stack.url}/process-event",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["type"] == "VALIDATION_ERROR"


def test_body_over_one_megabyte_is_413(stack: Stack) -> None:
    event = load_example("sim-updated.json")
    event["padding"] = "x" * (1024 * 1024)

    response = stack.post(event)

    assert response.status_code == 413
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert_crm_untouched(stack)


def test_form_content_type_is_415(stack: Stack) -> None:
    response = requests.post(
        f"{stack.url}/process-event",
        data={"event_id": "x"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )

    assert response.status_code == 415
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert_crm_untouched(stack)


def test_invalid_json_is_422(stack: Stack) -> None:
    response = stack.post('{"event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",')

    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["body"]
    assert response.json()["details"][0]["type"] == "json_invalid"
    assert_crm_untouched(stack)


def test_schema_violation_is_422_with_location(stack: Stack) -> None:
    event = load_example("sim-updated.json")
    del event["pb_data"]["sim_info"]

    response = stack.post(event)

    assert response.status_code == 422
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert response.json()["code"] == "invalid_event"
    locations = [detail["loc"] for detail in response.json()["details"]]
    assert ["pb_data", "sim_info"] in locations
    assert no_record_calls(stack)
    assert_crm_untouched(stack)


def test_event_type_without_plan_is_422(stack: Stack) -> None:
    event = load_example("sim-updated.json")
    event["data"]["event_type"] = "Account/Blocked"

    response = stack.post(event)

    assert response.status_code == 422
    assert response.json()["code"] == "no_action_plan"
    assert_crm_untouched(stack)


def test_zoho_data_error_is_422_naming_field(stack: Stack) -> None:
    event = load_example("sim-updated.json")
    event["pb_data"]["account_info"]["email"] = "olena.koval at example.com"

    response = stack.post(event)

    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "VALIDATION_ERROR"
    assert body["code"] == "zoho_rejected_data"
    assert "Contacts.Email" in body["message"]
    assert body["details"][0]["loc"] == ["pb_data", "account_info", "email"]
    assert_crm_untouched(stack)


def test_zoho_rate_limit_is_429_with_retry_after(stack: Stack) -> None:
    stack.emulator.add_fault(
        status=429,
        count=100,
        operation="upsert",
        headers={"Retry-After": "1"},
        body={"code": "TOO_MANY_REQUESTS", "message": "too many requests", "status": "error"},
    )

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 429
    assert response.json()["type"] == "RATE_LIMIT_ERROR"
    assert int(response.headers["Retry-After"]) >= 1
    assert_crm_untouched(stack)


def test_zoho_server_error_is_503(stack: Stack) -> None:
    stack.emulator.add_fault(
        status=503,
        count=100,
        body={"code": "INTERNAL_ERROR", "message": "internal error", "status": "error"},
    )

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 503
    assert response.json()["type"] == "CONNECTION_ERROR"
    assert_crm_untouched(stack)


@pytest.mark.slow
def test_zoho_timeout_is_503_and_retry_is_clean(stack: Stack) -> None:
    # Every upsert is held past the client's 3 s read timeout, then still applied, as Zoho
    # may apply a write whose response never arrived.
    stack.emulator.add_fault(kind="timeout", hold_seconds=4.0, count=100, operation="upsert")
    event = load_example("sim-updated.json")

    response = stack.post(event)
    stack.emulator.clear_faults()
    retried = stack.post(event)

    assert response.status_code == 503
    assert response.json()["type"] == "CONNECTION_ERROR"
    assert retried.status_code == 202
    assert len(stack.records("Contacts")) == 1
    assert len(stack.records("SIM_Cards")) == 1


@pytest.fixture
def stack_without_zoho(tmp_path: Path) -> Iterator[tuple[Stack, EmulatorServer]]:
    """A service whose emulator is stopped before any event arrives: Zoho is down."""
    emulator = EmulatorServer().start()
    settings = make_settings(emulator, tmp_path)
    emulator.stop()
    service = build_service(settings)
    server = ServiceServer(service.app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Stack(url=server.url, emulator=emulator, server=server, settings=settings), emulator
    finally:
        server.shutdown()
        thread.join(timeout=15)
        service.close()


def test_zoho_down_is_503(stack_without_zoho: tuple[Stack, EmulatorServer]) -> None:
    stack, _ = stack_without_zoho

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 503
    assert response.json()["type"] == "CONNECTION_ERROR"
    assert "Retry-After" in response.headers


def test_zoho_down_makes_service_not_ready(
    stack_without_zoho: tuple[Stack, EmulatorServer],
) -> None:
    stack, _ = stack_without_zoho

    response = requests.get(f"{stack.url}/ready", timeout=30)

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["zoho"]["ready"] is False


def test_revoked_refresh_token_is_500_service_error(stack: Stack) -> None:
    stack.emulator.revoke_refresh_token()

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 500
    body = response.json()
    assert body["type"] == "SERVICE_ERROR"
    assert body["code"] == "zoho_auth_failed"
    assert "ZOHO_CRM_REFRESH_TOKEN" in body["message"]
    assert API_TOKEN not in json.dumps(body)
    assert stack.emulator.state.refresh_token not in json.dumps(body)
    assert_crm_untouched(stack)


def test_unexpected_bug_is_500_internal_error(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No real component fails this way on purpose, so the runner is made to raise a bug.
    def broken_run(self: Runner, *args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero in a step")

    monkeypatch.setattr(Runner, "run", broken_run)

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 500
    assert response.json()["type"] == "INTERNAL_ERROR"
    assert "ZeroDivisionError" not in response.text
    assert "division by zero" not in response.text
    assert "Traceback" not in response.text


def test_ready_when_zoho_reachable(stack: Stack) -> None:
    response = requests.get(f"{stack.url}/ready", timeout=10)

    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["zoho"]["token"] == "ok"


def served_sample(url: str, name: str, labels: dict[str, str]) -> float:
    """Return one sample that `GET /metrics` serves, or 0 when it is absent."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_metrics_after_an_event(stack: Stack) -> None:
    events = ("connector_events_total", {"event_type": "SIM/Updated", "outcome": "processed"})
    upserts = ("connector_zoho_calls_total", {"operation": "upsert", "status": "200"})
    events_before = served_sample(stack.url, *events)
    upserts_before = served_sample(stack.url, *upserts)

    stack.post(load_example("sim-updated.json"))

    assert served_sample(stack.url, *events) == events_before + 1
    assert served_sample(stack.url, *upserts) == upserts_before + 2


def chunks_of(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_body_over_limit_is_413(stack: Stack) -> None:
    event = load_example("sim-updated.json")
    event["padding"] = "x" * (1024 * 1024)

    # A generator body makes requests send Transfer-Encoding: chunked, without Content-Length.
    response = requests.post(
        f"{stack.url}/process-event",
        data=chunks_of(json.dumps(event).encode()),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 413
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert_crm_untouched(stack)


def test_chunked_body_within_limit_is_processed(stack: Stack) -> None:
    body = json.dumps(load_example("sim-updated.json")).encode()

    response = requests.post(
        f"{stack.url}/process-event",
        data=chunks_of(body, size=256),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 202
    assert len(stack.records("Contacts")) == 1
