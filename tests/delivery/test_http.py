"""The real service (app, processor, journal, client) answering NSPS through `falcon.testing`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import falcon.testing
import pytest

from engine.config import Settings
from engine.emulator.server import EmulatorServer
from engine.service.wiring import build_service

from .stack import eid, make_event

API_TOKEN = "delivery-http-token-0123456789"
HEADERS = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def client(emulator: EmulatorServer, tmp_path: Path) -> Iterator[falcon.testing.TestClient]:
    settings = Settings(
        api_token=API_TOKEN,
        environment="test",
        log_dir=tmp_path / "logs",
        zoho_accounts_url=emulator.url,
        zoho_api_domain=emulator.url,
        zoho_client_id="sandbox-client",
        zoho_client_secret="sandbox-secret",
        zoho_refresh_token="sandbox-refresh-token",
        zoho_token_file=tmp_path / "token.json",
        event_time_budget_seconds=1.0,
        journal_path=tmp_path / "journal.sqlite3",
        lock_dir=tmp_path / "locks",
    )
    service = build_service(settings)
    yield falcon.testing.TestClient(service.app)
    service.close()


def test_rate_limit_storm_then_recovery(
    client: falcon.testing.TestClient, emulator: EmulatorServer
) -> None:
    emulator.add_fault(kind="status", status=429, count=10_000, operation="upsert",
                       headers={"Retry-After": "2"},
                       body={"code": "TOO_MANY_REQUESTS", "message": "too many requests",
                             "status": "error", "details": {}})
    event = make_event("storm-1", "SIM/Created")

    limited = client.simulate_post("/process-event", json=event, headers=HEADERS)
    emulator.clear_faults()
    processed = client.simulate_post("/process-event", json=event, headers=HEADERS)
    duplicate = client.simulate_post("/process-event", json=event, headers=HEADERS)

    assert limited.status_code == 429
    assert limited.json["type"] == "RATE_LIMIT_ERROR"
    assert int(limited.headers["Retry-After"]) >= 1
    assert processed.status_code == 202
    assert processed.json["outcome"] == "processed"
    assert processed.json["event_id"] == eid("storm-1")
    assert duplicate.status_code == 202
    assert duplicate.json["outcome"] == "duplicate"
    assert len(emulator.records("Contacts")) == 1
    assert len(emulator.records("SIM_Cards")) == 1


def test_stale_event_answered_2xx(
    client: falcon.testing.TestClient, emulator: EmulatorServer
) -> None:
    client.simulate_post("/process-event", headers=HEADERS,
                         json=make_event("newer", at=timedelta(minutes=1)))

    stale = client.simulate_post("/process-event", json=make_event("older"), headers=HEADERS)

    assert stale.status_code == 202
    assert stale.json["outcome"] == "stale"
    assert stale.json["message"] == "stale, skipped"
