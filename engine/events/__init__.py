"""Incoming events: the NSPS event schema, paths into an event, and the event's time."""

from engine.events.paths import (
    ABSOLUTE_PREFIX,
    MISSING,
    format_path,
    is_empty,
    parse_path,
    read_path,
)
from engine.events.times import read_event_time
from engine.events.validator import (
    DEFAULT_SCHEMAS_DIR,
    SCHEMA_FILE_NAME,
    EventValidator,
    invalid_event_error,
)

__all__ = [
    "ABSOLUTE_PREFIX",
    "DEFAULT_SCHEMAS_DIR",
    "MISSING",
    "SCHEMA_FILE_NAME",
    "EventValidator",
    "format_path",
    "invalid_event_error",
    "is_empty",
    "parse_path",
    "read_event_time",
    "read_path",
]
