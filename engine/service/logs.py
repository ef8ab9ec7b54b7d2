"""Logging set-up: JSON lines to files, JSON or readable text on the console.

Every line carries the ids of the request being served (`request_id`, `unique_id`,
`event_id`, `event_type`) when they are known: `ContextFilter`, installed on each handler,
copies them from `engine.service.context` into the record. Values passed with
`extra={...}` become fields of the JSON line. Fields whose name suggests a credential are
replaced by `[redacted]` as a last line of defence; callers still never pass secrets.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.service import context

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

_LEVEL_NAMES = {
    logging.CRITICAL: "error",
    logging.ERROR: "error",
    logging.WARNING: "warn",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}

_SECRET_WORDS = ("token", "secret", "password", "authorization")

_INSTALLED_MARK = "_connector_handler"


class ContextFilter(logging.Filter):
    """Copy the current request's ids onto each record that passes a handler.

    A value passed in `extra` wins. The filter never rejects a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context.current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the fields a record adds beyond the standard ones, with secrets redacted."""
    fields: dict[str, Any] = {}
    for name, value in record.__dict__.items():
        if name in _STANDARD_ATTRIBUTES or name.startswith("_"):
            continue
        if any(word in name.lower() for word in _SECRET_WORDS):
            value = "[redacted]"
        fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "message": record.getMessage(),
            "logger": record.name,
        }
        line.update(record_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        text = json.dumps(line, default=str, ensure_ascii=False)
        if _encodable(text):
            return text
        # A value with an unpaired surrogate cannot be written as UTF-8. Escaped as `\\udXXX`,
        # it keeps the line valid JSON.
        return json.dumps(line, default=str)


class ConsoleFormatter(logging.Formatter):
    """Format a record as one readable line with its fields as `name=value` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_NAMES.get(record.levelno, record.levelname.lower()).upper()
        fields = " ".join(f"{name}={value}" for name, value in record_fields(record).items())
        text = f"{_timestamp(record)} {level:<5} {record.name}: {record.getMessage()}"
        if fields:
            text = f"{text}  {fields}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        if _encodable(text):
            return text
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def configure_logging(
    *, level: int, log_dir: Path | None, json_console: bool, stream: Any = None
) -> None:
    """Send every log record to `combined.log`, errors also to `error.log`, and to the console.

    Handlers installed by an earlier call are replaced, and handlers that others added to the
    root logger (pytest's capture, for instance) are kept. `log_dir=None` writes no files.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _INSTALLED_MARK, False):
            root.removeHandler(handler)
            handler.close()

    console = logging.StreamHandler(stream or sys.stderr)
    console.setFormatter(JsonFormatter() if json_console else ConsoleFormatter())
    handlers: list[logging.Handler] = [console]

    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        # WatchedFileHandler reopens the file after an external logrotate moves it.
        combined = logging.handlers.WatchedFileHandler(log_dir / "combined.log", encoding="utf-8")
        errors = logging.handlers.WatchedFileHandler(log_dir / "error.log", encoding="utf-8")
        errors.setLevel(logging.ERROR)
        for handler in (combined, errors):
            handler.setFormatter(JsonFormatter())
            handlers.append(handler)

    for handler in handlers:
        handler.addFilter(ContextFilter())
        setattr(handler, _INSTALLED_MARK, True)
        root.addHandler(handler)
    root.setLevel(level)


def _encodable(text: str) -> bool:
    """Return whether `text` can be written as UTF-8, so it has no unpaired surrogate."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
