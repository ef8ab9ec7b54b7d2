from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from engine.emulator import EmulatorServer


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[requests.Session]:
    """A session that calls the emulator's records API with a valid access token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Zoho-oauthtoken {emulator.issue_access_token()}"
    yield session
    session.close()
