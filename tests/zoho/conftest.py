from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.emulator import EmulatorServer
from engine.zoho import ZohoClient, ZohoSettings

SANDBOX_CREDENTIALS = {
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "refresh_token": "sandbox-refresh-token",
}


def closed_port_url() -> str:
    """Return a loopback URL where nothing listens, so a connection to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_settings(emulator: EmulatorServer, **overrides: Any) -> ZohoSettings:
    options: dict[str, Any] = {
        "accounts_url": emulator.url,
        # The first token response names the API domain; until then calls would be refused.
        "api_domain": closed_port_url(),
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        **SANDBOX_CREDENTIALS,
    }
    options.update(overrides)
    return ZohoSettings(**options)


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def client_factory(emulator: EmulatorServer) -> Iterator[Callable[..., ZohoClient]]:
    clients: list[ZohoClient] = []

    def build(*, wall_clock: Callable[[], float] = time.time, **overrides: Any) -> ZohoClient:
        client = ZohoClient(make_settings(emulator, **overrides), wall_clock=wall_clock)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(client_factory: Callable[..., ZohoClient]) -> ZohoClient:
    return client_factory()
