"""`EmulatorServer`: the emulated Zoho CRM served by waitress in a background thread."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server

from engine.emulator.app import (
    EmulatorApp,
    EmulatorSettings,
    EmulatorState,
    make_fault,
    reset_state,
)
from engine.emulator.modules import load_modules
from engine.emulator.records import RecordsApi
from engine.emulator.store import RecordStore

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
"""How often the serving loop checks whether `stop()` was called."""

DRAIN_SECONDS = 2.0
"""Maximum wait in `stop()` for the responses to requests already received to be sent."""

THREAD_EXIT_SECONDS = 1.0
"""Maximum wait in `stop()` for worker threads to exit once every connection is closed."""


class EmulatorServer:
    """A local Zoho CRM: token endpoint at `{url}/oauth/v2/token`, records at `{url}/crm/v8/`.

    The accounts server and the API domain are the same base URL, `url`. Use it as a context
    manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        modules_path: Path | None = None,
        state_file: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",  # noqa: S107 (the emulator's public sandbox value)
        refresh_token: str = "sandbox-refresh-token",  # noqa: S107 (same)
        *,
        settings: EmulatorSettings | None = None,
        threads: int = 32,
    ) -> None:
        self.modules = load_modules(modules_path)
        self.settings = settings or EmulatorSettings()
        self._stopping = threading.Event()
        self._store = RecordStore(state_file)
        records = RecordsApi(self.modules, self._store, lambda: self.settings.search_lag_seconds)
        self.state = EmulatorState(
            records,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            settings=self.settings,
            stopping=self._stopping,
        )
        self._host = host
        self._port = port
        self._threads = threads
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # Lifecycle

    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        self._store.open()
        app = EmulatorApp(self.state).build()
        self._server = create_server(
            app,
            host=self._host,
            port=self._port,
            threads=self._threads,
            clear_untrusted_proxy_headers=True,
            ident="zoho-emulator",
        )
        port = self._server.effective_port
        host = self._host if ":" not in self._host else f"[{self._host}]"
        self.url = f"http://{host}:{port}"
        self.state.base_url = self.url
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="zoho-emulator", daemon=True)
        self._thread.start()
        logger.info("Zoho CRM emulator started", extra={"url": self.url})
        return self

    def _serve(self) -> None:
        # waitress's own `run()` loops until every connection is closed, so an idle keep-alive
        # connection of a client would delay `stop()`. This loop checks for stop between polls.
        # Then it stops accepting and keeps serving until the requests already received have
        # their responses sent, which is quick because `stop()` also ends fault holds and
        # latency waits. Last, it closes every connection itself.
        server = self._server
        socket_map = server._map
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=POLL_SECONDS, map=socket_map, count=1)
            server.accepting = False
            drain_until = time.monotonic() + DRAIN_SECONDS
            while _has_pending_responses(socket_map) and time.monotonic() < drain_until:
                wasyncore.loop(timeout=POLL_SECONDS, map=socket_map, count=1)
        finally:
            for channel in list(socket_map.values()):
                if isinstance(channel, HTTPChannel):
                    # Unlike `close()`, this wakes a worker waiting to write, which then stops.
                    channel.handle_close()
                else:
                    channel.close()
            server.task_dispatcher.shutdown(timeout=THREAD_EXIT_SECONDS)

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
        self._store.close()
        logger.info("Zoho CRM emulator stopped", extra={"url": self.url})

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/v2/token"

    @property
    def client_id(self) -> str:
        """The OAuth client id the token endpoint accepts."""
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        """The OAuth client secret the token endpoint accepts."""
        return self.state.client_secret

    @property
    def refresh_token(self) -> str:
        """The refresh token the token endpoint accepts."""
        return self.state.refresh_token

    # Control, the same as the HTTP control API under /__emulator/

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        self.settings.update(changes)
        return asdict(self.settings)

    def add_fault(self, **spec: Any) -> None:
        """Serve a fault for the next `count` matching requests; see `Fault` for the keys."""
        fault = make_fault(spec)
        with self.state.lock:
            self.state.faults.append(fault)

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    def request_log(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Return the logged requests, oldest first, optionally only one operation's."""
        with self.state.lock:
            entries = [dict(entry) for entry in self.state.log]
        return [entry for entry in entries if operation is None or entry["operation"] == operation]

    def clear_log(self) -> None:
        with self.state.lock:
            self.state.log.clear()

    def records(self, module: str) -> list[dict[str, Any]]:
        return self._store.all(module)

    def expire_tokens(self) -> None:
        """Make every issued access token invalid, as if an hour had passed."""
        self.state.expire_tokens()

    def revoke_refresh_token(self) -> None:
        self.state.refresh_token_revoked = True

    def reset(self) -> None:
        reset_state(self.state)

    def issue_access_token(self) -> str:
        """Return a fresh access token, as a token refresh would, for direct HTTP use."""
        response = requests.post(
            self.token_url,
            data={
                "grant_type": "refresh_token",
                "client_id": self.state.client_id,
                "client_secret": self.state.client_secret,
                "refresh_token": self.state.refresh_token,
            },
            timeout=10,
        )
        return str(response.json()["access_token"])


def _has_pending_responses(socket_map: dict[int, Any]) -> bool:
    """Tell whether a connection has a request in progress or a response not yet sent.

    A request counts from its first byte, so one that is still arriving is read and served.
    """
    return any(
        isinstance(channel, HTTPChannel)
        and (channel.requests or channel.request is not None or channel.total_outbufs_len)
        for channel in socket_map.values()
    )
