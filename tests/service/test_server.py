"""`ServiceServer` on a real socket: graceful drain, refused connections, forced stop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import requests

from engine.service.server import ServiceServer


class SlowApp:
    """A WSGI app that blocks each request until `release` is set."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        self.started.set()
        self.release.wait(timeout=30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]


@pytest.fixture
def slow_app() -> SlowApp:
    return SlowApp()


@pytest.fixture
def server(slow_app: SlowApp) -> Iterator[ServiceServer]:
    service_server = ServiceServer(slow_app, host="127.0.0.1", port=0, threads=2, drain_timeout=30)
    thread = threading.Thread(target=service_server.serve_forever, daemon=True)
    thread.start()
    yield service_server
    slow_app.release.set()
    service_server.shutdown()
    thread.join(timeout=30)


def start_request(url: str) -> tuple[threading.Thread, list[Any]]:
    """Send a GET in a thread; the list receives the response or the exception raised."""
    outcomes: list[Any] = []

    def send() -> None:
        try:
            outcomes.append(requests.get(url, timeout=30))
        except requests.RequestException as error:
            outcomes.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    return sender, outcomes


def test_shutdown_waits_for_in_flight_request(server: ServiceServer, slow_app: SlowApp) -> None:
    sender, answers = start_request(server.url)
    slow_app.started.wait(timeout=10)
    shutdown = threading.Thread(target=server.shutdown)
    shutdown.start()

    # The listening socket closes while the request is still held. A bare TCP connect probes
    # it without sending a request, which the held app would otherwise block as well.
    refused = False
    for _ in range(500):
        try:
            probe = socket.create_connection((server.host, server.port), timeout=1)
        except OSError:
            refused = True
            break
        probe.close()
        time.sleep(0.01)
    in_flight_while_refused = server.in_flight
    slow_app.release.set()
    sender.join(timeout=30)
    shutdown.join(timeout=30)

    assert refused is True
    assert in_flight_while_refused == 1
    assert [answer.text for answer in answers] == ["finished"]
    assert server.wait_stopped(timeout=30) is True


def test_second_shutdown_stops_waiting(server: ServiceServer, slow_app: SlowApp) -> None:
    sender, outcomes = start_request(server.url)
    slow_app.started.wait(timeout=10)
    first = threading.Thread(target=server.shutdown)
    first.start()

    server.shutdown()
    first.join(timeout=30)
    stopped = server.wait_stopped(timeout=30)
    slow_app.release.set()
    sender.join(timeout=30)

    assert stopped is True
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], requests.ConnectionError)


def test_idle_server_stops_at_once(server: ServiceServer) -> None:
    server.shutdown()

    assert server.wait_stopped(timeout=30) is True
