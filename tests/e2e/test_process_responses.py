"""The rows of the NSPS response table against `python server.py` running as a subprocess.

`test_responses.py` covers the same rows with waitress in a thread of the test process. Here the
request crosses the real process boundary: the configuration comes from environment variables,
and the service talks to the emulator of the test process over HTTP.
"""

from __future__ import annotations

import json
import random
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.emulator import EmulatorServer

from .conftest import API_TOKEN, load_example
from .test_process import ServiceProcess, service_env, start_service

pytestmark = pytest.mark.slow

# Short enough that a row whose response comes only after the retry budget is spent (429, 503)
# takes a few seconds, and long enough for the retries to run on a loaded machine.
EVENT_TIME_BUDGET_SECONDS = "5"


@dataclass
class RunningService:
    """A `python server.py` process and the emulator it uses as Zoho CRM."""

    url: str
    emulator: EmulatorServer
    process: ServiceProcess


def run_service(emulator: EmulatorServer, state_dir: Path) -> RunningService:
    env = service_env(emulator, state_dir, EVENT_TIME_BUDGET_SECONDS=EVENT_TIME_BUDGET_SECONDS)
    process, url = start_service(env)
    return RunningService(url=url, emulator=emulator, process=process)


def stop_service(service: RunningService) -> None:
    service.process.process.send_signal(signal.SIGTERM)
    try:
        service.process.process.wait(timeout=60)
    finally:
        service.process.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One service process for the rows that leave Zoho usable afterwards."""
    with EmulatorServer() as emulator:
        service = run_service(emulator, tmp_path_factory.mktemp("service"))
        try:
            yield service
        finally:
            stop_service(service)


@pytest.fixture
def service(shared: RunningService) -> Iterator[RunningService]:
    yield shared
    shared.emulator.clear_faults()


def fresh_event(name: str) -> dict[str, Any]:
    """Return an example event with its own event id, account and SIM card.

    The shared service keeps one journal, so each test needs an event id it has not seen and
    records that no earlier test made newer.
    """
    event = load_example(name)
    event["event_id"] = str(uuid.uuid4())
    event["pb_data"]["account_info"]["id"] = f"7{random.randrange(10**9, 10**10)}@msisdn"
    event["pb_data"]["sim_info"]["i_sim_card"] = random.randrange(10**6, 10**7)
    return event


def post(
    url: str, body: Any, *, token: str | None = API_TOKEN, **headers: str
) -> requests.Response:
    all_headers = {"Content-Type": "application/json", **headers}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(f"{url}/process-event", data=data, headers=all_headers, timeout=60)


def contacts_of(emulator: EmulatorServer, event: dict[str, Any]) -> list[dict[str, Any]]:
    account_id = event["pb_data"]["account_info"]["id"]
    return [record for record in emulator.records("Contacts") if record["I_PB"] == account_id]


def sim_cards_of(emulator: EmulatorServer, event: dict[str, Any]) -> list[dict[str, Any]]:
    i_sim_card = event["pb_data"]["sim_info"]["i_sim_card"]
    return [
        record for record in emulator.records("SIM_Cards") if record["I_SIM_Card"] == i_sim_card
    ]


def test_valid_event_is_202_processed(service: RunningService) -> None:
    event = fresh_event("sim-created.json")

    response = post(service.url, event)

    contacts = contacts_of(service.emulator, event)
    sim_cards = sim_cards_of(service.emulator, event)
    assert response.status_code == 202
    assert response.json()["outcome"] == "processed"
    assert len(contacts) == 1
    assert len(sim_cards) == 1
    assert sim_cards[0]["Related_Contact"]["id"] == contacts[0]["id"]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param(None, "missing Authorization header: send 'Bearer <API_TOKEN>'", id="missing"),
        pytest.param("not-the-token", "invalid Bearer token", id="wrong"),
    ],
)
def test_bad_token_is_401(service: RunningService, token: str | None, message: str) -> None:
    event = fresh_event("sim-updated.json")

    response = post(service.url, event, token=token)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "message": message,
        "error": "Unauthorized",
        "type": "AUTHENTICATION_ERROR",
        "code": "unauthorized",
    }
    assert contacts_of(service.emulator, event) == []


def test_unknown_path_is_404(service: RunningService) -> None:
    response = requests.post(
        f"{service.url}/events", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10
    )

    assert response.status_code == 404
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert response.json()["message"] == (
        "no resource at /events: the endpoints are POST /process-event, GET /health, "
        "GET /ready, GET /metrics"
    )


def test_wrong_method_is_405(service: RunningService) -> None:
    response = requests.put(
        f"{service.url}/process-event",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["type"] == "VALIDATION_ERROR"


def test_body_over_one_megabyte_is_413(service: RunningService) -> None:
    event = fresh_event("sim-updated.json")
    event["padding"] = "x" * (1024 * 1024)

    response = post(service.url, event)

    assert response.status_code == 413
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert contacts_of(service.emulator, event) == []


def test_text_content_type_is_415(service: RunningService) -> None:
    event = fresh_event("sim-updated.json")

    response = post(service.url, event, **{"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert response.json()["type"] == "VALIDATION_ERROR"
    assert contacts_of(service.emulator, event) == []


def test_schema_violation_is_422(service: RunningService) -> None:
    event = fresh_event("sim-updated.json")
    del event["pb_data"]["account_info"]["id"]

    response = post(service.url, event)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_event"
    locations = [detail["loc"] for detail in response.json()["details"]]
    assert ["pb_data", "account_info", "id"] in locations


def test_zoho_data_error_is_422(service: RunningService) -> None:
    event = fresh_event("sim-updated.json")
    event["pb_data"]["account_info"]["email"] = "olena.koval at example.com"

    response = post(service.url, event)

    assert response.status_code == 422
    assert response.json()["code"] == "zoho_rejected_data"
    assert "Contacts.Email" in response.json()["message"]
    assert response.json()["details"][0]["loc"] == ["pb_data", "account_info", "email"]
    assert contacts_of(service.emulator, event) == []


def test_zoho_rate_limit_is_429(service: RunningService) -> None:
    service.emulator.add_fault(
        status=429,
        count=1000,
        operation="upsert",
        headers={"Retry-After": "1"},
        body={"code": "TOO_MANY_REQUESTS", "message": "too many requests", "status": "error"},
    )
    event = fresh_event("sim-updated.json")

    response = post(service.url, event)

    assert response.status_code == 429
    assert response.json()["type"] == "RATE_LIMIT_ERROR"
    assert int(response.headers["Retry-After"]) >= 1
    assert contacts_of(service.emulator, event) == []


def test_zoho_server_error_is_503(service: RunningService) -> None:
    service.emulator.add_fault(
        status=503,
        count=1000,
        body={"code": "INTERNAL_ERROR", "message": "internal error", "status": "error"},
    )
    event = fresh_event("sim-updated.json")

    response = post(service.url, event)

    assert response.status_code == 503
    assert response.json()["type"] == "CONNECTION_ERROR"
    assert "Retry-After" in response.headers
    assert contacts_of(service.emulator, event) == []


def test_zoho_down_is_503(tmp_path: Path) -> None:
    emulator = EmulatorServer().start()
    service = run_service(emulator, tmp_path)
    try:
        emulator.stop()

        response = post(service.url, fresh_event("sim-updated.json"))
    finally:
        stop_service(service)

    assert response.status_code == 503
    assert response.json()["type"] == "CONNECTION_ERROR"
    assert "Retry-After" in response.headers


def test_zoho_auth_failure_is_500(tmp_path: Path) -> None:
    with EmulatorServer() as emulator:
        service = run_service(emulator, tmp_path)
        try:
            emulator.revoke_refresh_token()
            emulator.expire_tokens()
            event = fresh_event("sim-updated.json")

            response = post(service.url, event)
            contacts = contacts_of(emulator, event)
        finally:
            stop_service(service)

    body = response.json()
    assert response.status_code == 500
    assert body["type"] == "SERVICE_ERROR"
    assert body["code"] == "zoho_auth_failed"
    assert "ZOHO_CRM_REFRESH_TOKEN" in body["message"]
    assert emulator.state.refresh_token not in json.dumps(body)
    assert contacts == []
