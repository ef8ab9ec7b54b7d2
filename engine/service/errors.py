"""The one place that turns exceptions into NSPS error responses.

A `ConnectorError` subclass is rendered with its own status and body. Falcon's own HTTP errors
(unknown route, method not allowed, malformed request line or headers) get the same
body shape. Any other exception is a bug: it is logged with its traceback and gets 500
INTERNAL_ERROR, with no detail of the failure in the body.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import falcon

from engine.errors import (
    ConnectorError,
    ErrorType,
    InternalError,
    MethodNotAllowedError,
    RouteNotFoundError,
)
from engine.service import context

logger = logging.getLogger(__name__)


class _HttpProtocolError(ConnectorError):
    """A request Falcon rejected before any resource saw it; the status comes from Falcon."""

    error_type = ErrorType.VALIDATION
    code = "bad_request"
    title = "Bad request"


def render_error(
    resp: falcon.Response, error: ConnectorError, *, status: int | None = None
) -> None:
    resp.status = status or error.status
    resp.media = error.to_body()
    if error.status == 401:
        resp.set_header("WWW-Authenticate", "Bearer")
    if error.retry_after is not None:
        resp.set_header("Retry-After", str(max(1, math.ceil(error.retry_after))))
    if isinstance(error, MethodNotAllowedError) and error.allowed:
        resp.set_header("Allow", ", ".join(error.allowed))


def handle_connector_error(
    req: falcon.Request, resp: falcon.Response, error: ConnectorError, params: dict[str, Any]
) -> None:
    # This is the summary line of a failed event. The cause's text is left out because
    # transport errors can quote URLs, and only its class is logged.
    level = logging.ERROR if error.status >= 500 else logging.WARNING
    failed_event = "event_id" in context.current()
    fields: dict[str, Any] = {
        "outcome": "failed",
        "status": error.status,
        "error_code": error.code,
        "error_message": error.message,
    }
    if error.__cause__ is not None:
        fields["cause_class"] = type(error.__cause__).__name__
    logger.log(level, "event failed" if failed_event else "request failed", extra=fields)
    render_error(resp, error)


class HttpErrorHandler:
    """Handler of Falcon's own HTTP errors; a 404 lists the endpoints the service has."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        self._endpoints = ", ".join(endpoints)

    def __call__(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        error: falcon.HTTPError,
        params: dict[str, Any],
    ) -> None:
        converted: ConnectorError
        status = error.status_code
        if status == 404:
            converted = RouteNotFoundError(
                f"no resource at {req.path}: the endpoints are {self._endpoints}"
            )
        elif status == 405:
            allowed = _allowed_methods(error)
            converted = MethodNotAllowedError(
                f"method {req.method} is not allowed on {req.path}: "
                f"use {', '.join(allowed) or 'none'}",
                allowed=allowed,
            )
        else:
            converted = _HttpProtocolError(error.description or error.title or "bad request")
        logger.warning(
            "request rejected",
            extra={
                "status": status,
                "error_code": converted.code,
                "error_message": converted.message,
            },
        )
        render_error(resp, converted, status=status)


def handle_unexpected_error(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]
) -> None:
    logger.error(
        "unexpected error while serving the request",
        exc_info=error,
        extra={"error_class": type(error).__name__},
    )
    request_id = context.current().get("request_id", "")
    message = f"internal error: see the service log lines with request_id {request_id}"
    render_error(resp, InternalError(message))


def _allowed_methods(error: falcon.HTTPError) -> tuple[str, ...]:
    allow = dict(error.headers or {}).get("Allow", "")
    methods = (method.strip() for method in allow.split(","))
    return tuple(method for method in methods if method and method != "OPTIONS")


def install_error_handlers(app: falcon.App, *, endpoints: Sequence[str]) -> None:
    app.add_error_handler(Exception, handle_unexpected_error)
    app.add_error_handler(falcon.HTTPError, HttpErrorHandler(endpoints))
    app.add_error_handler(ConnectorError, handle_connector_error)
