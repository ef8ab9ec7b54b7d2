"""A real server process killed with SIGKILL in the middle of an event, restarted, event re-sent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.emulator.server import EmulatorServer
from engine.journal import EventOutcome, SqliteJournal

from .stack import build_stack, comparable, eid, make_event

REPO = Path(__file__).resolve().parents[2]
API_TOKEN = "delivery-test-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """`python server.py` in a subprocess, configured to use one emulator and one journal."""

    def __init__(self, emulator: EmulatorServer, directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.journal_path = directory / "journal.sqlite3"
        self.environment = {
            **os.environ,
            "NODE_ENV": "test",
            "API_TOKEN": API_TOKEN,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "ZOHO_CRM_ACCOUNTS_URL": emulator.url,
            "ZOHO_CRM_API_DOMAIN": emulator.url,
            "ZOHO_CRM_CLIENT_ID": "sandbox-client",
            "ZOHO_CRM_CLIENT_SECRET": "sandbox-secret",
            "ZOHO_CRM_REFRESH_TOKEN": "sandbox-refresh-token",
            "ZOHO_CRM_TOKEN_FILE": str(directory / "token.json"),
            "JOURNAL_PATH": str(self.journal_path),
            "LOCK_DIR": str(directory / "locks"),
            "LOG_DIR": str(directory / "logs"),
            "MAPPINGS_DIR": str(REPO / "mappings"),
            "SCHEMAS_DIR": str(REPO / "schemas"),
            "LOG_LEVEL": "warn",
        }
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "server.py")],
            cwd=self.directory,
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with status {self.process.returncode}")
            time.sleep(0.1)
        raise RuntimeError("server did not answer /health within 30 seconds")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def send(self, event: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.url}/process-event",
            json=event,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=60,
        )


@pytest.fixture
def server(emulator: EmulatorServer, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(emulator, tmp_path)
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()


def wait_for_step(journal_path: Path, event_id: str, step_id: str) -> None:
    journal = SqliteJournal(journal_path)
    try:
        for _ in range(300):
            entry = journal.get(event_id)
            if entry is not None and step_id in entry.completed_steps:
                return
            time.sleep(0.05)
    finally:
        journal.close()
    raise AssertionError(f"step {step_id} of event {event_id} was not journaled in 15 seconds")


@pytest.mark.slow
def test_killed_mid_event_then_resent(
    server: ServerProcess, emulator: EmulatorServer, tmp_path: Path
) -> None:
    event = make_event("crash-1", "SIM/Created")
    # The SIM card upsert hangs, then Zoho completes it after the connector has died: the
    # hardest case, a write that happened but was never journaled.
    emulator.add_fault(kind="timeout", hold_seconds=2.0, operation="upsert", module="SIM_Cards")
    server.start()
    in_flight: dict[str, Any] = {}

    def send_and_lose() -> None:
        try:
            in_flight["response"] = server.send(event)
        except requests.ConnectionError as error:
            in_flight["error"] = error

    sender = threading.Thread(target=send_and_lose)
    sender.start()
    wait_for_step(server.journal_path, eid("crash-1"), "contact")
    server.kill()
    sender.join(30)
    time.sleep(2.5)  # let the emulator finish the held upsert, as Zoho would
    server.start()
    resent = server.send(event)
    again = server.send(event)
    server.kill()

    journal = SqliteJournal(server.journal_path)
    entry = journal.get(eid("crash-1"))
    journal.close()
    with EmulatorServer() as clean_emulator:
        clean = build_stack(clean_emulator, tmp_path / "clean")
        clean.processor.process(event)
        expected = (comparable(clean.records("Contacts")), comparable(clean.records("SIM_Cards")))
        clean.journal.close()
        clean.client.close()

    assert "error" in in_flight
    assert resent.status_code == 202
    assert resent.json()["outcome"] == "processed"
    assert again.json()["outcome"] == "duplicate"
    assert len(emulator.records("Contacts")) == 1
    assert len(emulator.records("SIM_Cards")) == 1
    assert (
        comparable(emulator.records("Contacts")),
        comparable(emulator.records("SIM_Cards")),
    ) == expected
    assert entry is not None
    assert (entry.outcome, entry.attempts) == (EventOutcome.PROCESSED, 2)
