"""Paths into an event: parsing, formatting and reading.

A path is written with dots, `pb_data.account_info.id`, and a list index is a number,
`pb_data.account_info.assigned_addons.0.name`. A path that starts with `$.` is absolute (from the
event root); any other path is relative to the input a step binds.
"""

from __future__ import annotations

from typing import Any

from engine.planning.plan import EventPath

ABSOLUTE_PREFIX = "$."

MISSING: Any = object()
"""Marker for a path that leads nowhere in the event, distinct from an explicit null."""


def parse_path(text: str) -> tuple[bool, EventPath]:
    """Split a path into (is_absolute, segments); numeric segments become list indexes.

    `$` alone is the event root. Raises ValueError for an empty path or an empty segment.
    """
    absolute = text == "$" or text.startswith(ABSOLUTE_PREFIX)
    body = text[len(ABSOLUTE_PREFIX) :] if text.startswith(ABSOLUTE_PREFIX) else text
    if text == "$":
        return True, ()
    if not body:
        raise ValueError("path is empty")

    segments: list[str | int] = []
    for part in body.split("."):
        if not part:
            raise ValueError(f"path {text!r} has an empty segment")
        segments.append(int(part) if part.isdigit() else part)
    return absolute, tuple(segments)


def format_path(path: EventPath) -> str:
    """Render segments as a dotted path, the form used in messages and plans."""
    return ".".join(str(segment) for segment in path) if path else "$"


def read_path(document: Any, path: EventPath) -> Any:
    """Return the value at `path`, or `MISSING` when a segment does not exist."""
    value = document
    for segment in path:
        if isinstance(segment, int) and isinstance(value, list):
            if segment >= len(value):
                return MISSING
            value = value[segment]
        elif isinstance(value, dict) and str(segment) in value:
            value = value[str(segment)]
        else:
            return MISSING
    return value


def is_empty(value: Any) -> bool:
    """Return whether a value counts as absent: missing, null, or a string of only whitespace."""
    if isinstance(value, str):
        return not value.strip()
    return value is MISSING or value is None
