"""The real service on waitress in a thread, against the real emulator over HTTP."""

from __future__ import annotations

import copy
import io
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.config import Settings
from engine.emulator import EmulatorServer
from engine.service.logs import configure_logging
from engine.service.server import ServiceServer
from engine.service.wiring import Service, build_service

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
API_TOKEN = "e2e-token-0123456789abcdef"


def load_example(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return copy.deepcopy(event)


@dataclass
class Stack:
    """A running service, its emulator, and helpers to post events and read records."""

    url: str
    emulator: EmulatorServer
    server: ServiceServer
    settings: Settings

    def post(
        self, body: Any, *, token: str | None = API_TOKEN, **headers: str
    ) -> requests.Response:
        all_headers = {"Content-Type": "application/json", **headers}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(
            f"{self.url}/process-event", data=data, headers=all_headers, timeout=30
        )

    def records(self, module: str) -> list[dict[str, Any]]:
        return self.emulator.records(module)

    def writes(self) -> list[dict[str, Any]]:
        """Return the emulator's logged write requests (insert, update, upsert)."""
        return [
            entry
            for entry in self.emulator.request_log()
            if entry["operation"] in ("insert", "update", "upsert")
        ]


def make_settings(emulator: EmulatorServer, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_token": API_TOKEN,
        "host": "127.0.0.1",
        "port": 0,
        "zoho_accounts_url": emulator.url,
        "zoho_api_domain": emulator.url,
        "zoho_client_id": emulator.state.client_id,
        "zoho_client_secret": emulator.state.client_secret,
        "zoho_refresh_token": emulator.state.refresh_token,
        "zoho_token_file": tmp_path / "zoho-token.json",
        # Wide enough that injected latency on a loaded machine never reads as a timeout.
        "zoho_timeout_seconds": 3.0,
        "zoho_connect_timeout_seconds": 3.0,
        "event_time_budget_seconds": 8.0,
        "journal_path": tmp_path / "journal.sqlite3",
        "lock_dir": tmp_path / "locks",
        "log_dir": tmp_path / "logs",
        "shutdown_timeout_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def debug_logging(tmp_path: Path) -> Iterator[Path]:
    """Log at debug level to files, as the service does, so every log call of a test runs.

    A log call with a bad `extra` raises only when its level is enabled, so running the
    stack at the default WARNING level would hide it.
    """
    log_dir = tmp_path / "test-logs"
    configure_logging(
        level=logging.DEBUG, log_dir=log_dir, json_console=False, stream=io.StringIO()
    )
    yield log_dir
    configure_logging(level=logging.WARNING, log_dir=None, json_console=False)


@pytest.fixture
def stack(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Stack]:
    settings = make_settings(emulator, tmp_path)
    service: Service = build_service(settings)
    server = ServiceServer(service.app, host="127.0.0.1", port=0, threads=4, drain_timeout=10)
    thread = threading.Thread(target=server.serve_forever, name="service", daemon=True)
    thread.start()
    try:
        yield Stack(url=server.url, emulator=emulator, server=server, settings=settings)
    finally:
        server.shutdown()
        thread.join(timeout=15)
        service.close()
