"""The real service (app, processor, journal, client) serving NSPS through `falcon.testing`."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import falcon.testing
import pytest

from engine.config import Settings
from engine.delivery.processor import EventProcessor
from engine.emulator.server import EmulatorServer
from engine.journal import SqliteJournal
from engine.service.app import create_app
from engine.service.wiring import build_service

from .stack import build_stack, eid, make_event

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
    emulator.add_fault(
        kind="status",
        status=429,
        count=10_000,
        operation="upsert",
        headers={"Retry-After": "2"},
        body={
            "code": "TOO_MANY_REQUESTS",
            "message": "too many requests",
            "status": "error",
            "details": {},
        },
    )
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
    client.simulate_post(
        "/process-event", headers=HEADERS, json=make_event("newer", at=timedelta(minutes=1))
    )

    stale = client.simulate_post("/process-event", json=make_event("older"), headers=HEADERS)

    assert stale.status_code == 202
    assert stale.json["outcome"] == "stale"
    assert stale.json["message"] == "stale, skipped"


@pytest.mark.parametrize(
    "phase",
    [
        pytest.param("new event", id="new event"),
        pytest.param("duplicate", id="already processed event"),
    ],
)
def test_busy_journal_is_429_with_retry_after(
    emulator: EmulatorServer, tmp_path: Path, phase: str
) -> None:
    stack = build_stack(emulator, tmp_path)
    stack.journal.close()
    journal = SqliteJournal(tmp_path / "journal.sqlite3", busy_timeout_seconds=0.2)
    processor = EventProcessor(
        stack.processor.planner, stack.processor.runner, journal, lock_dir=tmp_path / "locks"
    )
    app = create_app(
        Settings(api_token=API_TOKEN),
        processor=processor,
        readiness=lambda: {"ready": True},
        event_types=("SIM/Updated",),
    )
    client = falcon.testing.TestClient(app)
    event = make_event("busy")
    if phase == "duplicate":
        first = client.simulate_post("/process-event", json=event, headers=HEADERS)
        assert first.status_code == 202
    other_process = sqlite3.connect(tmp_path / "journal.sqlite3", isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")

    try:
        busy = client.simulate_post("/process-event", json=event, headers=HEADERS)
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    retried = client.simulate_post("/process-event", json=event, headers=HEADERS)
    journal.close()
    stack.client.close()

    assert busy.status_code == 429
    assert busy.headers["Retry-After"] == "5"
    assert busy.json == {
        "message": "the journal is locked by another process; retry later",
        "error": "Too many requests",
        "type": "RATE_LIMIT_ERROR",
        "code": "rate_limited",
    }
    assert retried.status_code == 202
    assert retried.json["outcome"] == ("processed" if phase == "new event" else "duplicate")


def test_event_id_case_is_ignored(
    client: falcon.testing.TestClient, emulator: EmulatorServer
) -> None:
    event = make_event("upper-case")
    upper = {**event, "event_id": event["event_id"].upper()}

    first = client.simulate_post("/process-event", json=upper, headers=HEADERS)
    writes_after_first = len(emulator.request_log())
    second = client.simulate_post("/process-event", json=event, headers=HEADERS)

    assert first.json["outcome"] == "processed"
    assert second.status_code == 202
    assert second.json["outcome"] == "duplicate"
    assert second.json["event_id"] == eid("upper-case")
    assert len(emulator.request_log()) == writes_after_first


@pytest.mark.parametrize(
    ("change", "warnings"),
    [
        pytest.param({}, 0, id="same body"),
        pytest.param({"product_name": "Unlimited"}, 1, id="different body"),
    ],
)
def test_reused_event_id_with_other_body_warns(
    client: falcon.testing.TestClient,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, str],
    warnings: int,
) -> None:
    event = make_event("reused")
    client.simulate_post("/process-event", json=event, headers=HEADERS)
    redelivered = make_event("reused", **change)

    with caplog.at_level(logging.WARNING, logger="engine.delivery.processor"):
        result = client.simulate_post("/process-event", json=redelivered, headers=HEADERS)

    reused = [record for record in caplog.records if "different body" in record.getMessage()]
    assert result.status_code == 202
    assert result.json["outcome"] == "duplicate"
    assert result.json["previous_outcome"] == "processed"
    assert len(reused) == warnings
    for record in reused:
        assert record.event_id == eid("reused")  # type: ignore[attr-defined]
        assert "Unlimited" not in f"{record.getMessage()} {record.__dict__}"


@pytest.mark.parametrize(
    ("field", "far_future"),
    [
        pytest.param("created_at", "9999-01-01T00:00:00+00:00", id="created_at"),
        pytest.param("event_time", "9999-01-01 00:00:00", id="data.variables.event_time"),
    ],
)
def test_far_future_event_does_not_block_later_ones(
    client: falcon.testing.TestClient, emulator: EmulatorServer, field: str, far_future: str
) -> None:
    future = make_event("future", product_name="Gold")
    if field == "created_at":
        future["created_at"] = far_future
    else:
        del future["created_at"]
        future["data"]["variables"]["event_time"] = far_future

    first = client.simulate_post("/process-event", json=future, headers=HEADERS)
    later = client.simulate_post(
        "/process-event", json=make_event("later", product_name="Silver"), headers=HEADERS
    )

    assert first.json["outcome"] == "processed"
    assert later.status_code == 202
    assert later.json["outcome"] == "processed"
    assert emulator.records("Contacts")[0]["Product_Name_PB"] == "Silver"
