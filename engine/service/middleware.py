"""Falcon middleware: request ids and access log, Bearer authentication, OPTIONS, headers."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

import falcon

from engine.errors import AuthenticationError
from engine.service import context

logger = logging.getLogger("engine.service.access")

# The service returns JSON only, so the policy forbids every kind of content and framing.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS_HEADER = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


class RequestContextMiddleware:
    """Bind the request's ids for logging, echo them back, and write one access log line.

    NSPS sends `x-b3-traceid` (logged as `request_id`) and `x-request-id` (logged as
    `unique_id`); a missing one is replaced by a new UUID.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        context.clear()
        context.bind(
            request_id=_header_id(req, "X-B3-TRACEID"),
            unique_id=_header_id(req, "X-REQUEST-ID"),
        )
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        ids = context.current()
        resp.set_header("X-B3-TraceId", ids.get("request_id", ""))
        resp.set_header("X-Request-Id", ids.get("unique_id", ""))
        started = getattr(req.context, "started", time.perf_counter())
        status = _status_code(resp)
        logger.info(
            "%s %s %s",
            req.method,
            req.path,
            status,
            extra={
                "method": req.method,
                "path": req.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "remote_addr": req.remote_addr,
            },
        )
        context.clear()


class BearerAuthMiddleware:
    """Check `Authorization: Bearer <API_TOKEN>` on the methods a resource lists in `auth_methods`.

    Other methods pass through, so a wrong method gets 405 whatever the token.
    """

    def __init__(self, api_token: str) -> None:
        self._expected = api_token.encode("utf-8")

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if req.method not in getattr(resource, "auth_methods", ()):
            return
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if not header:
            raise AuthenticationError("missing Authorization header: send 'Bearer <API_TOKEN>'")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Authorization header is not of the form 'Bearer <token>'")
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._expected):
            raise AuthenticationError("invalid Bearer token")


class OptionsMiddleware:
    """Reject `OPTIONS` with 405 unless it is a CORS preflight from an allowed origin.

    Falcon responds to `OPTIONS` on every route with an empty 200 by default. The service serves
    `OPTIONS` only for CORS, so any other `OPTIONS` request gets the same 405 error body as
    every other method a route does not serve.
    """

    def __init__(self, cors_origins: tuple[str, ...]) -> None:
        self._cors_origins = frozenset(cors_origins)

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if req.method != "OPTIONS" or resource is None or self._is_allowed_preflight(req):
            return
        allowed = [
            method
            for method in falcon.constants.COMBINED_METHODS
            if method != "OPTIONS" and hasattr(resource, f"on_{method.lower()}")
        ]
        raise falcon.HTTPMethodNotAllowed(allowed)

    def _is_allowed_preflight(self, req: falcon.Request) -> bool:
        origin = req.get_header("Origin")
        if not origin or not req.get_header("Access-Control-Request-Method"):
            return False
        return "*" in self._cors_origins or origin in self._cors_origins


class SecurityHeadersMiddleware:
    """Add the security headers to every response, errors included."""

    def __init__(self, *, hsts: bool) -> None:
        self._headers = dict(SECURITY_HEADERS)
        if hsts:
            self._headers[HSTS_HEADER[0]] = HSTS_HEADER[1]

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        resp.set_headers(self._headers)


def _header_id(req: falcon.Request, name: str) -> str:
    value = (req.get_header(name) or "").strip()
    # Ids are copied into every log line, so an oversized or multi-line value is replaced.
    if not value or len(value) > 128 or not value.isprintable():
        return context.new_id()
    return value


def _status_code(resp: falcon.Response) -> int:
    return int(str(resp.status).split(" ", 1)[0])
