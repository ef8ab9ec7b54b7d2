"""HTTP resources: health, readiness, metrics and the NSPS event endpoint."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine import __version__
from engine.errors import (
    ConnectorError,
    ErrorDetail,
    EventValidationError,
    NoActionPlanError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from engine.metrics import EVENT_SECONDS, EVENTS, REGISTRY
from engine.service import context

logger = logging.getLogger("engine.service")


class ProcessedEvent(Protocol):
    """The result of one event, as `engine.delivery.processor.ProcessResult` carries it."""

    @property
    def status(self) -> int: ...
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def event_type(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def zoho_calls(self) -> int: ...


class EventProcessing(Protocol):
    """Anything that processes one event body (`engine.delivery.processor.EventProcessor`)."""

    def process(self, body: Any) -> ProcessedEvent: ...


ReadinessCheck = Callable[[], dict[str, Any]]

MAX_LOGGED_ID_LENGTH = 128

# NSPS events nest about five levels deep. The limit keeps every later step that walks the
# body recursively (schema validation, the journal's JSON encoder) far from Python's
# recursion limit of 1000 frames.
MAX_JSON_DEPTH = 128
_TOO_DEEP_MESSAGE = f"body is nested deeper than {MAX_JSON_DEPTH} levels"

# Python's default limit for converting between text and int (`sys.get_int_max_str_digits`).
MAX_INTEGER_DIGITS = 4300

_UTF8_CHARSET_NAMES = frozenset({"utf-8", "utf8"})

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class HealthResource:
    """`GET /health`: the process is up. Needs no token and makes no outside call."""

    def __init__(self, app_name: str) -> None:
        self._body = {"status": "ok", "name": app_name, "version": __version__}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._body

    # Load balancers often probe with HEAD; Falcon drops the body of a HEAD response.
    on_head = on_get


class ReadinessResource:
    """`GET /ready`: 200 when Zoho CRM is reachable and an access token is available, else 503.

    The check returns a report with a boolean `ready`; the report is passed on as `zoho`.
    """

    def __init__(self, check: ReadinessCheck) -> None:
        self._check = check

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            report = self._check()
        except ConnectorError as error:
            report = {"ready": False, "error": error.message}

        if report.get("ready") is True:
            resp.media = {"status": "ready", "zoho": report}
            return
        logger.warning("readiness check failed", extra={"error_message": report.get("error")})
        resp.status = 503
        resp.media = {"status": "unavailable", "zoho": report}

    # The same probe as `HealthResource.on_head`; Falcon drops the body of a HEAD response.
    on_head = on_get


class MetricsResource:
    """`GET /metrics`: Prometheus text format of `engine.metrics.REGISTRY`."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(REGISTRY)


class ProcessEventResource:
    """`POST /process-event`: one NSPS event per request, and a response listing the Zoho writes."""

    auth_methods = frozenset({"POST"})

    def __init__(
        self,
        processor: EventProcessing,
        *,
        max_body_bytes: int,
        event_types: Collection[str] = (),
    ) -> None:
        self._processor = processor
        self._max_body_bytes = max_body_bytes
        self._event_types = frozenset(event_types)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _require_json_content_type(req)
        raw = _read_body(req, self._max_body_bytes)
        body = parse_json(raw)
        _bind_event_ids(body)

        started = time.perf_counter()
        try:
            result = self._processor.process(body)
        except Exception as error:
            self._count_failed_event(error, time.perf_counter() - started)
            raise

        context.bind(event_id=result.event_id, event_type=result.event_type)
        EVENTS.labels(event_type=result.event_type or "", outcome=result.outcome).inc()
        EVENT_SECONDS.labels(event_type=result.event_type or "").observe(
            time.perf_counter() - started
        )
        logger.info(
            "event %s",
            result.outcome,
            extra={
                "outcome": result.outcome,
                "status": result.status,
                "zoho_calls": result.zoho_calls,
                "duration_ms": _elapsed_ms(started),
            },
        )
        resp.status = result.status
        resp.media = result.body

    def _count_failed_event(self, error: Exception, seconds: float) -> None:
        # The event type is a metric label, so only a type the mappings plan or ignore is used
        # as one, and any other is counted under "invalid". An event that failed validation is
        # counted under "invalid" whatever its type.
        event_type = context.current().get("event_type")
        if (
            isinstance(error, (EventValidationError, NoActionPlanError))
            or event_type not in self._event_types
        ):
            event_type = "invalid"
        EVENTS.labels(event_type=event_type, outcome="failed").inc()
        EVENT_SECONDS.labels(event_type=event_type).observe(seconds)


def _require_json_content_type(req: falcon.Request) -> None:
    media_type, parameters = falcon.parse_header(req.content_type or "")
    media_type = media_type.strip().lower()
    is_json = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    if not is_json:
        media_type_text = media_type or "none"
        raise UnsupportedMediaTypeError(
            f"Content-Type {media_type_text!r} is not supported: send the event as application/json"
        )

    # JSON exchanged between systems must be UTF-8 (RFC 8259, section 8.1), and the body is
    # decoded as UTF-8 whatever the header names, so another charset is rejected by name.
    charset = parameters.get("charset", "utf-8").strip().lower()
    if charset not in _UTF8_CHARSET_NAMES:
        raise UnsupportedMediaTypeError(
            f"charset {charset!r} is not supported: send the event as UTF-8, with "
            "Content-Type 'application/json' or 'application/json; charset=utf-8'"
        )


def _read_body(req: falcon.Request, limit: int) -> bytes:
    # Content-Length is checked first so an oversized body is never read; the bytes actually
    # read are checked too, because a chunked request has no Content-Length.
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLargeError(_too_large_message(req.content_length, limit))
    # Without Content-Length, Falcon's bounded stream reads nothing, so the raw stream is read.
    # Waitress 3.0 receives a chunked body completely and sets CONTENT_LENGTH before the app
    # runs (tested with chunked bodies against the real server), so this branch serves other
    # WSGI servers.
    stream = req.bounded_stream if req.content_length is not None else req.stream
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLargeError(_too_large_message(None, limit))
    return raw


def _too_large_message(size: int | None, limit: int) -> str:
    if size is None:
        return f"request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"
    return (
        f"request body of {size} bytes is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"
    )


def parse_json(raw: bytes) -> Any:
    """Decode a request body as strict JSON; raise `EventValidationError` saying where it fails.

    Beyond JSON syntax, the body must nest at most `MAX_JSON_DEPTH` levels, its integers must
    have at most `MAX_INTEGER_DIGITS` digits, and its strings must not contain an unpaired
    UTF-16 surrogate escape (`"\\ud800"`), which no UTF-8 file, log or database can store.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _invalid_json(f"body is not UTF-8: invalid byte at position {error.start}") from error
    if not text.strip():
        raise _invalid_json("body is empty: send one NSPS event as a JSON object")
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        message = f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        raise _invalid_json(message) from error
    except ValueError as error:
        raise _invalid_json(f"body is not valid JSON: {error}") from error
    except RecursionError as error:
        raise _invalid_json(_TOO_DEEP_MESSAGE) from error

    _check_structure(text, body)
    return body


def _parse_int(digits: str) -> int:
    # Python's own error for a longer integer advises calling sys.set_int_max_str_digits(),
    # which means nothing to the sender.
    count = len(digits.lstrip("-"))
    if count > MAX_INTEGER_DIGITS:
        raise ValueError(
            f"an integer has {count} digits, more than the {MAX_INTEGER_DIGITS} allowed"
        )
    return int(digits)


def _check_structure(text: str, body: Any) -> None:
    """Raise `EventValidationError` when the body nests too deeply or has an unpaired surrogate.

    Each check runs only when the text could break its rule: the depth check when the text has
    more than `MAX_JSON_DEPTH` brackets, the string check when it has a `\\uD800`-`\\uDFFF`
    escape. A typical event needs neither.
    """
    if _SURROGATE_ESCAPE.search(text):
        _check_strings_and_depth(body)
    elif text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        _check_depth(body)


def _check_depth(body: Any) -> None:
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise _invalid_json(_TOO_DEEP_MESSAGE)
        children = value.values() if isinstance(value, dict) else value
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _check_strings_and_depth(body: Any) -> None:
    # Paths are built only here, for the `loc` of a string with an unpaired surrogate.
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(body, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            _check_text(value, path)
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= MAX_JSON_DEPTH:
            raise _invalid_json(_TOO_DEEP_MESSAGE)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check_text(key, path)
            pending.append((item, (*path, key)))


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        escape = f"\\u{ord(text[error.start]):04x}"
        raise _invalid_json(
            f"a string has the unpaired UTF-16 surrogate escape {escape}, which is not a "
            "character: send characters outside the Basic Multilingual Plane as UTF-8 or as "
            "a surrogate pair",
            loc=("body", *path),
        ) from error


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _invalid_json(message: str, loc: tuple[str | int, ...] = ("body",)) -> EventValidationError:
    detail = ErrorDetail(loc=loc, msg=message, type="json_invalid")
    return EventValidationError(message, details=[detail])


def _bind_event_ids(body: Any) -> None:
    """Bind the event id and type for logging as early as they can be read; they may be wrong."""
    if not isinstance(body, dict):
        return
    event_id = body.get("event_id")
    data = body.get("data")
    event_type = data.get("event_type") if isinstance(data, dict) else None
    context.bind(event_id=_log_value(event_id), event_type=_log_value(event_type))


def _log_value(value: Any) -> str | None:
    # Ids are copied into every log line of the request, so an invalid event cannot make
    # those lines arbitrarily long.
    if not isinstance(value, str):
        return None
    return value[:MAX_LOGGED_ID_LENGTH]


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
