from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.emulator import EmulatorServer
from engine.runner import Runner
from engine.zoho import ZohoClient, ZohoSettings


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[ZohoClient]:
    settings = ZohoSettings(
        accounts_url=emulator.url,
        api_domain=emulator.url,
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        refresh_token="sandbox-refresh-token",
        retry_base_seconds=0.01,
        retry_max_seconds=0.05,
    )
    with ZohoClient(settings) as zoho_client:
        yield zoho_client


@pytest.fixture
def runner(client: ZohoClient) -> Runner:
    return Runner(client)
