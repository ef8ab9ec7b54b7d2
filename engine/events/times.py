"""When an event happened, read from the event itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)

ESPF_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

DEFAULT_MAX_FUTURE_SKEW = timedelta(days=1)
"""How far in the future an event time may be before it is treated as unusable.

A time far ahead would become the newest applied time of its records, and every later event
would then be skipped as stale.
"""

Clock = Callable[[], datetime]


def read_event_time(
    event: dict[str, Any],
    *,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    clock: Clock | None = None,
) -> datetime | None:
    """Return `created_at`, else `data.variables.event_time`, as an aware UTC datetime.

    `created_at` is ISO 8601; a value without an offset is read as UTC. `event_time` is
    "YYYY-MM-DD HH:MM:SS" in UTC. A value that does not parse, falls outside the range of
    `datetime` once converted to UTC, or lies more than `max_future_skew` after `clock()` (the
    current time by default) is not used. The event is still processed, and one warning per
    event names the event id and the fields that were not used.
    """
    latest = (clock() if clock is not None else datetime.now(UTC)) + max_future_skew
    data = event.get("data")
    variables = data.get("variables") if isinstance(data, dict) else None
    candidates = (
        ("created_at", event.get("created_at"), _parse_iso),
        (
            "data.variables.event_time",
            variables.get("event_time") if isinstance(variables, dict) else None,
            _parse_espf,
        ),
    )

    unusable: list[str] = []
    result: datetime | None = None
    for name, text, parse in candidates:
        if not isinstance(text, str) or not text:
            continue
        parsed = parse(text)
        if parsed is None:
            unusable.append(f"{name} is not a valid time")
        elif parsed > latest:
            seconds = f"{max_future_skew.total_seconds():g}"
            unusable.append(f"{name} is more than {seconds} seconds in the future")
        else:
            result = parsed
            break

    if unusable:
        outcome = "the other field is used" if result is not None else "the event has no time"
        logger.warning(
            "event time not usable: %s; %s",
            ", ".join(unusable),
            outcome,
            extra={"event_id": event.get("event_id")},
        )
    return result


def _parse_iso(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        # An offset can move a time next to year 1 or 9999 out of datetime's range.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _parse_espf(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, ESPF_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return _parse_iso(text)
