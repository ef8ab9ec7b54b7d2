"""The ten minimum test cases of PortaOne's NSPS connector guide, one test each."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from engine.runner import Runner

from .conftest import API_TOKEN, Stack, load_example


def test_case_01_health_returns_200(stack: Stack) -> None:
    response = requests.get(f"{stack.url}/health", timeout=10)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_case_02_valid_event_is_accepted(stack: Stack) -> None:
    response = stack.post(load_example("nsps-sim-updated-enriched.json"))

    assert response.status_code == 202
    assert response.json()["message"] == "event processed"
    assert len(stack.records("Contacts")) == 1


def test_case_03_bad_token_is_401(stack: Stack) -> None:
    response = stack.post(load_example("sim-updated.json"), token="wrong-token")

    assert response.status_code == 401
    assert response.json()["type"] == "AUTHENTICATION_ERROR"
    assert stack.records("Contacts") == []


def test_case_04_unknown_resource_is_404(stack: Stack) -> None:
    response = requests.get(f"{stack.url}/no-such-resource", timeout=10)

    assert response.status_code == 404
    assert response.json()["type"] == "VALIDATION_ERROR"


def test_case_05_wrong_method_is_405(stack: Stack) -> None:
    response = requests.get(
        f"{stack.url}/process-event", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10
    )

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["type"] == "VALIDATION_ERROR"


def test_case_06_schema_error_is_422(stack: Stack) -> None:
    # The guide's malformed event: an event type, but no variables and no pb_data.
    event = {
        "event_id": "5b1f2a3c-4d5e-4f60-8172-839405a6b7c8",
        "data": {"event_type": "SIM/Updated"},
    }

    response = stack.post(event)

    assert response.status_code == 422
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert response.json()["details"]
    assert stack.records("Contacts") == []


def test_case_07_rate_limit_is_429(stack: Stack) -> None:
    stack.emulator.add_fault(
        status=429,
        count=100,
        operation="upsert",
        body={"code": "TOO_MANY_REQUESTS", "message": "too many requests", "status": "error"},
    )

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 429
    assert response.json()["type"] == "RATE_LIMIT_ERROR"
    assert "Retry-After" in response.headers


def test_case_08_internal_error_is_500(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # No real component fails this way on purpose, so the runner is made to raise a bug.
    def broken_run(self: Runner, *args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected state")

    monkeypatch.setattr(Runner, "run", broken_run)

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 500
    assert response.json()["type"] == "INTERNAL_ERROR"
    assert "unexpected state" not in response.text


def test_case_09_downstream_unavailable_is_503(stack: Stack) -> None:
    stack.emulator.add_fault(
        status=500,
        count=100,
        operation="upsert",
        body={"code": "INTERNAL_ERROR", "message": "internal error", "status": "error"},
    )

    response = stack.post(load_example("sim-updated.json"))

    assert response.status_code == 503
    assert response.json()["type"] == "CONNECTION_ERROR"
    assert stack.records("Contacts") == []


@pytest.mark.slow
def test_case_10_graceful_shutdown_finishes_event(stack: Stack) -> None:
    stack.emulator.update_settings(latency_seconds=1.0)
    answers: list[requests.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(stack.post(load_example("sim-updated.json")))
    )
    sender.start()
    while not stack.emulator.request_log():
        time.sleep(0.05)

    stack.server.shutdown()
    sender.join(timeout=60)

    assert stack.server.wait_stopped(timeout=30)
    assert [answer.status_code for answer in answers] == [202]
    assert len(stack.records("Contacts")) == 1
    assert len(stack.records("SIM_Cards")) == 1
