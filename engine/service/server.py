"""Serve the WSGI app on waitress, and shut down without dropping in-flight events.

On SIGTERM or SIGINT the server stops accepting connections and waits until the response to
every request it has already received is flushed to its client (at most `drain_timeout`
seconds). Then `serve_forever` returns. A second signal ends the wait at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

import waitress
from waitress.server import BaseWSGIServer

logger = logging.getLogger("engine.service.server")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_POLL_SECONDS = 0.05


class _InFlightCounter:
    """Wrap a WSGI app and count the requests it is still producing a response for."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._lock:
            self._count += 1
        try:
            # Reading the whole response here keeps the count exact; every response of this
            # service is a small JSON document or metrics text.
            response = self._app(environ, start_response)
            try:
                chunks = list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
        finally:
            with self._lock:
                self._count -= 1
        return chunks


class ServiceServer:
    """A waitress server for one WSGI app, with a graceful `shutdown`."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        host: str,
        port: int,
        threads: int = 8,
        max_request_body_size: int = 4 * 1024 * 1024,
        drain_timeout: float = 30.0,
    ) -> None:
        self._in_flight = _InFlightCounter(app)
        self._drain_timeout = drain_timeout
        self._server: BaseWSGIServer = waitress.create_server(
            self._in_flight,
            host=host,
            port=port,
            threads=threads,
            # The app rejects an oversized body with an NSPS error body. This waitress limit
            # only stops a client from making the server buffer far more than that.
            max_request_body_size=max_request_body_size,
            clear_untrusted_proxy_headers=True,
        )
        self._shutdown_started = threading.Event()
        self._force = threading.Event()
        self._stopped = threading.Event()

    @property
    def host(self) -> str:
        return str(self._server.effective_host)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def in_flight(self) -> int:
        return self._in_flight.count

    def serve_forever(self) -> None:
        """Serve until `shutdown` has drained the server; blocks the calling thread."""
        logger.info("listening", extra={"url": self.url})
        try:
            self._server.run()
        finally:
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            self._stopped.set()
            logger.info("stopped", extra={"url": self.url})

    def shutdown(self) -> None:
        """Stop accepting, wait for in-flight requests, then end `serve_forever` (thread-safe)."""
        if self._shutdown_started.is_set():
            self._force.set()
            return
        self._shutdown_started.set()
        logger.info("shutdown started", extra={"in_flight": self.in_flight})
        self._server.trigger.pull_trigger(self._stop_accepting)

        deadline = time.monotonic() + self._drain_timeout
        while not self._drained():
            if self._force.is_set() or time.monotonic() >= deadline:
                logger.warning(
                    "shutdown did not wait for every in-flight request",
                    extra={"in_flight": self.in_flight, "forced": self._force.is_set()},
                )
                break
            time.sleep(_POLL_SECONDS)
        self._server.trigger.pull_trigger(self._close_all)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def install_signal_handlers(self) -> None:
        """Start `shutdown` on SIGTERM and SIGINT; call from the main thread."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("signal received", extra={"signal": signal.Signals(signum).name})
            threading.Thread(target=self.shutdown, name="shutdown", daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _drained(self) -> bool:
        if self._in_flight.count:
            return False
        # A request can be received but not started yet, or have a response not yet sent.
        for channel in list(self._server._map.values()):
            if getattr(channel, "requests", None) or getattr(channel, "total_outbufs_len", 0):
                return False
        return True

    def _stop_accepting(self) -> None:
        # Runs in the waitress loop thread. Closes only the listening socket, so open
        # connections keep sending their responses.
        self._server.accepting = False
        self._server.del_channel()
        self._server.socket.close()
        # Logged only once the socket is closed, so new connections are refused from the time
        # this line appears.
        logger.info(
            "shutting down: no longer accepting connections",
            extra={"in_flight": self.in_flight},
        )

    def _close_all(self) -> None:
        # Runs in the waitress loop thread; an empty socket map ends the loop in `run`.
        for channel in list(self._server._map.values()):
            try:
                channel.close()
            except OSError:
                logger.debug("closing a connection failed during shutdown", exc_info=True)
        self._server._map.clear()
