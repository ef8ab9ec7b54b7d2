"""When an event happened, read from the event itself."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

ESPF_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def read_event_time(event: dict[str, Any]) -> datetime | None:
    """Return `created_at`, else `data.variables.event_time`, as an aware UTC datetime.

    `created_at` is ISO 8601; a value without an offset is read as UTC. `event_time` is
    "YYYY-MM-DD HH:MM:SS" in UTC. A value that does not parse is skipped with a warning, so the
    event is still processed, only without an ordering time.
    """
    created_at = event.get("created_at")
    if isinstance(created_at, str) and created_at:
        parsed = _parse_iso(created_at)
        if parsed is not None:
            return parsed
        logger.warning(
            "created_at is not ISO 8601, using data.variables.event_time",
            extra={"event_id": event.get("event_id")},
        )

    data = event.get("data")
    variables = data.get("variables") if isinstance(data, dict) else None
    event_time = variables.get("event_time") if isinstance(variables, dict) else None
    if isinstance(event_time, str) and event_time:
        parsed = _parse_espf(event_time)
        if parsed is not None:
            return parsed
        logger.warning(
            "data.variables.event_time is not YYYY-MM-DD HH:MM:SS, event has no time",
            extra={"event_id": event.get("event_id")},
        )
    return None


def _parse_iso(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_espf(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, ESPF_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return _parse_iso(text)
