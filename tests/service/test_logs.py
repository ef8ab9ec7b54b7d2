"""Log set-up: JSON lines in `combined.log` and `error.log`, request ids on every line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.service import context
from engine.service.logs import configure_logging


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[tuple[Path, io.StringIO]]:
    console = io.StringIO()
    configure_logging(level=logging.INFO, log_dir=tmp_path, json_console=False, stream=console)
    yield tmp_path, console
    configure_logging(level=logging.WARNING, log_dir=None, json_console=False)
    context.clear()


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lines_carry_request_ids(configured: tuple[Path, io.StringIO]) -> None:
    log_dir, _ = configured
    context.bind(
        request_id="trace-1", unique_id="unique-1", event_id="ev-1", event_type="SIM/Created"
    )

    logging.getLogger("engine.test").info("event processed", extra={"zoho_calls": 3})

    [line] = read_lines(log_dir / "combined.log")
    assert line["message"] == "event processed"
    assert line["level"] == "info"
    assert line["request_id"] == "trace-1"
    assert line["unique_id"] == "unique-1"
    assert line["event_id"] == "ev-1"
    assert line["event_type"] == "SIM/Created"
    assert line["zoho_calls"] == 3
    assert str(line["timestamp"]).endswith("Z")


def test_errors_also_go_to_error_log(configured: tuple[Path, io.StringIO]) -> None:
    log_dir, _ = configured
    logger = logging.getLogger("engine.test")

    logger.info("fine")
    logger.warning("odd")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")

    combined = read_lines(log_dir / "combined.log")
    errors = read_lines(log_dir / "error.log")
    assert [line["message"] for line in combined] == ["fine", "odd", "failed"]
    assert [line["level"] for line in combined] == ["info", "warn", "error"]
    assert [line["message"] for line in errors] == ["failed"]
    assert "ValueError: boom" in str(errors[0]["exception"])


def test_level_filters_debug(configured: tuple[Path, io.StringIO]) -> None:
    log_dir, _ = configured

    logging.getLogger("engine.test").debug("personal data here")

    assert read_lines(log_dir / "combined.log") == []


def test_secret_named_fields_are_redacted(configured: tuple[Path, io.StringIO]) -> None:
    log_dir, console = configured

    logging.getLogger("engine.test").info(
        "calling", extra={"access_token": "abc", "client_secret": "def", "zoho_module": "Contacts"}
    )

    [line] = read_lines(log_dir / "combined.log")
    assert line["access_token"] == "[redacted]"
    assert line["client_secret"] == "[redacted]"
    assert line["zoho_module"] == "Contacts"
    assert "abc" not in console.getvalue()


def test_console_is_readable_in_development(configured: tuple[Path, io.StringIO]) -> None:
    _, console = configured
    context.bind(request_id="trace-2")

    logging.getLogger("engine.test").warning("retrying", extra={"attempt": 2})

    text = console.getvalue()
    assert " WARN  engine.test: retrying  attempt=2 request_id=trace-2" in text


def test_console_is_json_in_production(tmp_path: Path) -> None:
    console = io.StringIO()
    configure_logging(level=logging.INFO, log_dir=None, json_console=True, stream=console)
    try:
        logging.getLogger("engine.test").info("started", extra={"port": 3000})
    finally:
        configure_logging(level=logging.WARNING, log_dir=None, json_console=False)

    line = json.loads(console.getvalue().splitlines()[-1])
    assert line["message"] == "started"
    assert line["port"] == 3000


def test_reconfiguring_replaces_handlers(tmp_path: Path) -> None:
    first = io.StringIO()
    second = io.StringIO()
    configure_logging(level=logging.INFO, log_dir=None, json_console=True, stream=first)
    configure_logging(level=logging.INFO, log_dir=None, json_console=True, stream=second)
    try:
        logging.getLogger("engine.test").info("once")
    finally:
        configure_logging(level=logging.WARNING, log_dir=None, json_console=False)

    assert first.getvalue() == ""
    assert second.getvalue().count('"once"') == 1


def test_unpaired_surrogate_is_logged_escaped(tmp_path: Path) -> None:
    # The console is a strict UTF-8 stream, as a container's stderr can be.
    raw_console = io.BytesIO()
    console = io.TextIOWrapper(raw_console, encoding="utf-8", errors="strict")
    configure_logging(level=logging.INFO, log_dir=tmp_path, json_console=False, stream=console)
    context.bind(event_id="bad-\ud800")
    try:
        logging.getLogger("engine.test").error("event failed", extra={"first_name": "Ol\udfffena"})
    finally:
        configure_logging(level=logging.WARNING, log_dir=None, json_console=False)
        context.clear()
    console.flush()

    [line] = read_lines(tmp_path / "combined.log")
    [error_line] = read_lines(tmp_path / "error.log")
    assert line["event_id"] == "bad-\ud800"
    assert line["first_name"] == "Ol\udfffena"
    assert error_line["message"] == "event failed"
    assert "event_id=bad-\\ud800" in raw_console.getvalue().decode("utf-8")
