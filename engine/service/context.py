"""Ids of the request being served, visible to every log line written while serving it.

The values live in context variables, so each waitress worker thread reads only its own
request. `RequestContextMiddleware` sets them when a request starts and clears them when the
response is sent.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

LOG_FIELDS = ("request_id", "unique_id", "event_id", "event_type")

_values: dict[str, ContextVar[str | None]] = {
    name: ContextVar(name, default=None) for name in LOG_FIELDS
}


def new_id() -> str:
    return str(uuid.uuid4())


def bind(**values: str | None) -> None:
    """Set some of the request's ids (`request_id`, `unique_id`, `event_id`, `event_type`)."""
    for name, value in values.items():
        _values[name].set(value)


def clear() -> None:
    for variable in _values.values():
        variable.set(None)


def current() -> dict[str, str]:
    """Return the ids that are set, by field name."""
    found: dict[str, str] = {}
    for name, variable in _values.items():
        value = variable.get()
        if value is not None:
            found[name] = value
    return found
