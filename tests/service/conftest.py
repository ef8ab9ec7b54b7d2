"""Fixtures for the HTTP layer: the real Falcon app around a small in-test processor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon.testing
import pytest

from engine.config import Settings
from engine.errors import ConnectorError
from engine.service.app import create_app
from engine.service.logs import ContextFilter

API_TOKEN = "test-token-0123456789abcdef"

# The event types that the app receives as planned or ignored by the mappings.
EVENT_TYPES = ("SIM/Updated", "SIM/Created")


@dataclass
class Result:
    status: int
    body: dict[str, Any]
    event_id: str | None
    event_type: str | None
    outcome: str
    zoho_calls: int


@dataclass
class RecordingProcessor:
    """Store each body it receives and return a 200 result, or raise the error it was given."""

    error: BaseException | None = None
    bodies: list[Any] = field(default_factory=list)

    def process(self, body: Any) -> Result:
        self.bodies.append(body)
        if self.error is not None:
            raise self.error
        return Result(
            status=200,
            body={"message": "Event processed successfully", "event_id": body.get("event_id")},
            event_id=body.get("event_id"),
            event_type=body["data"]["event_type"],
            outcome="processed",
            zoho_calls=2,
        )


@dataclass
class Readiness:
    error: ConnectorError | None = None

    def __call__(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"ready": True, "token": "ok", "api": "ok"}


@pytest.fixture
def processor() -> RecordingProcessor:
    return RecordingProcessor()


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
def make_client(
    processor: RecordingProcessor, readiness: Readiness
) -> Callable[..., falcon.testing.TestClient]:
    def make(**overrides: Any) -> falcon.testing.TestClient:
        settings = Settings(api_token=API_TOKEN, **overrides)
        app = create_app(
            settings, processor=processor, readiness=readiness, event_types=EVENT_TYPES
        )
        return falcon.testing.TestClient(app)

    return make


@pytest.fixture
def client(make_client: Callable[..., falcon.testing.TestClient]) -> falcon.testing.TestClient:
    return make_client()


@pytest.fixture(autouse=True)
def request_ids_in_caplog(caplog: pytest.LogCaptureFixture) -> None:
    """Give captured records the request ids, as the service's own log handlers do."""
    caplog.handler.addFilter(ContextFilter())
