"""Checks of the values the control API accepts for settings and faults.

A check returns why a value is invalid, as the end of a sentence that starts with the value's
name, or `None` when the value is valid.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

FAULT_KINDS = ("status", "timeout", "drop")
OPERATIONS = ("token", "insert", "update", "upsert", "get", "search", "fields")

MAX_SECONDS = 86400.0
"""Maximum delay a setting or fault may request: one day."""

Check = Callable[[Any], str | None]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def seconds_check(value: Any) -> str | None:
    # The range check also rejects nan and infinity, and unlike `math.isfinite` it accepts
    # integers too large for a float.
    if not _is_number(value) or not 0 <= value <= MAX_SECONDS:
        return f"must be a number of seconds from 0 to {MAX_SECONDS:g}"
    return None


def integer_check(minimum: int, *, nullable: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"must be an integer of at least {minimum}" + (" or null" if nullable else "")
        return None

    return check


def boolean_check(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def choice_check(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        if value is None or value in choices:
            return None
        return f"must be one of {', '.join(choices)} or null"

    return check


def text_check(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "must be a string or null"


def status_check(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        return "must be an HTTP status code from 100 to 599"
    return None


def body_check(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return "must be a JSON object, an array or null"


def headers_check(value: Any) -> str | None:
    if not isinstance(value, dict) or not all(
        isinstance(name, str)
        and isinstance(text, str)
        and name.strip()
        and not any(char in name + text for char in "\r\n")
        for name, text in value.items()
    ):
        return "must map header names to single-line strings"
    return None


SETTING_CHECKS: dict[str, Check] = {
    "search_lag_seconds": seconds_check,
    "latency_seconds": seconds_check,
    "concurrency_limit": integer_check(0, nullable=True),
    "token_expires_in": integer_check(1),
    "legacy_token_shape": boolean_check,
    "omit_api_domain": boolean_check,
    "token_limit_per_window": integer_check(0, nullable=True),
    "max_active_tokens": integer_check(1),
}

FAULT_CHECKS: dict[str, Check] = {
    "kind": lambda value: (
        None if value in FAULT_KINDS else f"must be one of {', '.join(FAULT_KINDS)}"
    ),
    "count": integer_check(1),
    "status": status_check,
    "body": body_check,
    "text": text_check,
    "headers": headers_check,
    "hold_seconds": seconds_check,
    "method": text_check,
    "operation": choice_check(OPERATIONS),
    "module": text_check,
}


def shown(value: Any) -> str:
    """Return `value` as JSON for a message, cut to about 60 characters."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:60] + "..."
