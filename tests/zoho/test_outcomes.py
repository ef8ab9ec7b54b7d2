"""Every row of the outcome table, played against the emulator over real HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from engine.emulator import EmulatorServer
from engine.errors import ZohoAuthError, ZohoUnavailableError
from engine.zoho import ZohoClient
from engine.zoho.outcomes import (
    FALLBACK_CLIENT_ERROR,
    FALLBACK_SERVER_ERROR,
    OUTCOMES,
    OutcomeRule,
    RetryAction,
    Transport,
    classify,
)

from .conftest import closed_port_url, make_settings

MAX_RETRIES = 2
RECORD_ID = "5725767000000411001"
STATUS_ROWS = [rule for rule in OUTCOMES if rule.transport is None]


def attempts_for(rule: OutcomeRule, *, idempotent: bool) -> int:
    if rule.action is RetryAction.RETRY:
        return 1 + MAX_RETRIES
    if rule.action is RetryAction.RETRY_IF_IDEMPOTENT:
        return 1 + MAX_RETRIES if idempotent else 1
    if rule.action is RetryAction.REFRESH_TOKEN:
        return 2
    return 1


def rule_id(rule: OutcomeRule) -> str:
    return f"{rule.status} {rule.code or 'any code'}"


@pytest.mark.parametrize("rule", STATUS_ROWS, ids=[rule_id(rule) for rule in STATUS_ROWS])
def test_status_row_on_get(
    rule: OutcomeRule, emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    client = client_factory(max_retries=MAX_RETRIES)
    code = rule.code or "UNLISTED_CODE"
    expected_attempts = attempts_for(rule, idempotent=True)
    emulator.add_fault(
        operation="get",
        status=rule.status,
        count=expected_attempts,
        body={"code": code, "details": {}, "message": "injected", "status": "error"},
    )

    with pytest.raises(rule.error) as raised:
        client.get("Contacts", RECORD_ID)

    assert type(raised.value) is rule.error
    assert len(emulator.request_log("get")) == expected_attempts
    assert rule.hint in raised.value.message
    assert classify(rule.status, code) is rule


@pytest.mark.parametrize(
    "status",
    [pytest.param(500, id="500 internal error"), pytest.param(503, id="503 unavailable")],
)
def test_insert_not_retried_after_server_error(
    status: int, emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    client = client_factory(max_retries=MAX_RETRIES)
    emulator.add_fault(
        operation="insert",
        status=status,
        count=3,
        body={"code": "INTERNAL_ERROR", "details": {}, "message": "injected", "status": "error"},
    )

    with pytest.raises(ZohoUnavailableError):
        client.insert("Contacts", [{"Last_Name": "Once"}])

    assert len(emulator.request_log("insert")) == 1


def test_insert_retried_after_rate_limit(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    client = client_factory(max_retries=MAX_RETRIES)
    emulator.add_fault(
        operation="insert",
        status=429,
        count=1,
        body={"code": "TOO_MANY_REQUESTS", "details": {}, "message": "injected", "status": "error"},
    )

    results = client.insert("Contacts", [{"Last_Name": "After 429"}])

    assert results[0].ok is True
    assert len(emulator.request_log("insert")) == 2
    assert len(emulator.records("Contacts")) == 1


def test_refresh_row_recovers_after_one_refresh(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    emulator.add_fault(
        operation="get",
        status=401,
        count=1,
        body={
            "code": "INVALID_TOKEN",
            "details": {},
            "message": "invalid oauth token",
            "status": "error",
        },
    )

    assert client.get("Contacts", RECORD_ID) is None
    assert len(emulator.request_log("token")) == 2
    assert len(emulator.request_log("get")) == 2


def test_transport_connection_refused(emulator: EmulatorServer) -> None:
    emulator.update_settings(omit_api_domain=True)
    sleeps: list[float] = []
    client = ZohoClient(
        make_settings(emulator, api_domain=closed_port_url(), max_retries=MAX_RETRIES),
        sleep=sleeps.append,
    )

    with pytest.raises(ZohoUnavailableError) as raised:
        client.get("Contacts", RECORD_ID)

    rule = classify(None, None, Transport.CONNECTION_REFUSED)
    assert rule.hint in raised.value.message
    assert len(sleeps) == MAX_RETRIES


def test_transport_connection_refused_retries_insert(emulator: EmulatorServer) -> None:
    emulator.update_settings(omit_api_domain=True)
    sleeps: list[float] = []
    client = ZohoClient(
        make_settings(emulator, api_domain=closed_port_url(), max_retries=MAX_RETRIES),
        sleep=sleeps.append,
    )

    with pytest.raises(ZohoUnavailableError):
        client.insert("Contacts", [{"Last_Name": "Never sent"}])

    assert len(sleeps) == MAX_RETRIES


@pytest.fixture
def not_http_server() -> Iterator[str]:
    """Serve a line that is not HTTP to every connection; return the server's URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stopping.set()
    thread.join(timeout=5)
    listener.close()


def test_transport_connection_error_not_http(
    emulator: EmulatorServer, not_http_server: str
) -> None:
    emulator.update_settings(omit_api_domain=True)
    sleeps: list[float] = []
    client = ZohoClient(
        make_settings(emulator, api_domain=not_http_server, max_retries=MAX_RETRIES),
        sleep=sleeps.append,
    )

    with pytest.raises(ZohoUnavailableError) as raised:
        client.get("Contacts", RECORD_ID)

    rule = classify(None, None, Transport.CONNECTION_ERROR)
    assert rule.hint in raised.value.message
    assert len(sleeps) == MAX_RETRIES


@pytest.mark.parametrize(
    ("operation", "expected_attempts"),
    [
        pytest.param("get", 1 + MAX_RETRIES, id="get retried"),
        pytest.param("insert", 1, id="insert not retried"),
    ],
)
def test_transport_connection_reset(
    operation: str,
    expected_attempts: int,
    emulator: EmulatorServer,
    client_factory: Callable[..., ZohoClient],
) -> None:
    client = client_factory(max_retries=MAX_RETRIES)
    emulator.add_fault(operation=operation, kind="drop", count=3)

    with pytest.raises(ZohoUnavailableError) as raised:
        if operation == "get":
            client.get("Contacts", RECORD_ID)
        else:
            client.insert("Contacts", [{"Last_Name": "Dropped"}])

    assert classify(None, None, Transport.CONNECTION_RESET).hint in raised.value.message
    assert len(emulator.request_log(operation)) == expected_attempts


@pytest.mark.parametrize(
    ("operation", "expected_attempts"),
    [
        pytest.param("get", 1 + MAX_RETRIES, id="get retried"),
        pytest.param("insert", 1, id="insert not retried"),
    ],
)
def test_transport_timeout(
    operation: str,
    expected_attempts: int,
    emulator: EmulatorServer,
    client_factory: Callable[..., ZohoClient],
) -> None:
    client = client_factory(max_retries=MAX_RETRIES, timeout_seconds=0.3)
    emulator.add_fault(operation=operation, kind="timeout", hold_seconds=5, count=3)

    with pytest.raises(ZohoUnavailableError) as raised:
        if operation == "get":
            client.get("Contacts", RECORD_ID)
        else:
            client.insert("Contacts", [{"Last_Name": "Held"}])

    assert classify(None, None, Transport.TIMEOUT).hint in raised.value.message
    assert len(emulator.request_log(operation)) == expected_attempts


def test_transport_invalid_response(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    client = client_factory(max_retries=MAX_RETRIES)
    emulator.add_fault(operation="get", status=200, text="<html>proxy error</html>", count=3)

    with pytest.raises(ZohoUnavailableError) as raised:
        client.get("Contacts", RECORD_ID)

    assert classify(None, None, Transport.INVALID_RESPONSE).hint in raised.value.message
    assert len(emulator.request_log("get")) == 1 + MAX_RETRIES


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        pytest.param(507, "X", FALLBACK_SERVER_ERROR, id="unlisted 5xx acts like 500"),
        pytest.param(418, "X", FALLBACK_CLIENT_ERROR, id="unlisted 4xx is a request error"),
    ],
)
def test_fallback_rows(status: int, code: str, expected: OutcomeRule) -> None:
    assert classify(status, code) is expected


def test_second_invalid_token_fails(emulator: EmulatorServer, client: ZohoClient) -> None:
    emulator.add_fault(
        operation="get",
        status=401,
        count=2,
        body={
            "code": "INVALID_TOKEN",
            "details": {},
            "message": "invalid oauth token",
            "status": "error",
        },
    )

    with pytest.raises(ZohoAuthError):
        client.get("Contacts", RECORD_ID)

    assert len(emulator.request_log("token")) == 2
