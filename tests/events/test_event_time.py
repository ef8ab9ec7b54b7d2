"""When an event happened: created_at first, then data.variables.event_time, in UTC."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.events import read_event_time


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            {"created_at": "2025-03-12T16:47:30.443939+00:00"},
            datetime(2025, 3, 12, 16, 47, 30, 443939, tzinfo=UTC),
            id="created_at in UTC",
        ),
        pytest.param(
            {"created_at": "2025-03-12T18:47:30+02:00"},
            datetime(2025, 3, 12, 16, 47, 30, tzinfo=UTC),
            id="created_at with an offset",
        ),
        pytest.param(
            {"created_at": "2025-03-12T16:47:30"},
            datetime(2025, 3, 12, 16, 47, 30, tzinfo=UTC),
            id="created_at without an offset is UTC",
        ),
        pytest.param(
            {"created_at": None, "data": {"variables": {"event_time": "2025-03-12 16:47:30"}}},
            datetime(2025, 3, 12, 16, 47, 30, tzinfo=UTC),
            id="event_time when created_at is null",
        ),
        pytest.param(
            {
                "created_at": "yesterday",
                "data": {"variables": {"event_time": "2025-03-12 16:47:30"}},
            },
            datetime(2025, 3, 12, 16, 47, 30, tzinfo=UTC),
            id="event_time when created_at does not parse",
        ),
        pytest.param({"data": {"variables": None}}, None, id="no time at all"),
        pytest.param(
            {"data": {"variables": {"event_time": "12/03/2025"}}}, None, id="unparsable event_time"
        ),
    ],
)
def test_read_event_time(event: dict[str, Any], expected: datetime | None) -> None:
    assert read_event_time(event) == expected


NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return NOW


@pytest.mark.parametrize(
    ("event", "expected", "warning"),
    [
        pytest.param(
            {"event_id": "e1", "created_at": "2026-06-02T11:59:59+00:00"},
            datetime(2026, 6, 2, 11, 59, 59, tzinfo=UTC),
            None,
            id="within a day ahead",
        ),
        pytest.param(
            {
                "event_id": "e2",
                "created_at": "9999-01-01T00:00:00+00:00",
                "data": {"variables": {"event_time": "2026-06-01 11:00:00"}},
            },
            datetime(2026, 6, 1, 11, 0, tzinfo=UTC),
            "event time not usable: created_at is more than 86400 seconds in the future; "
            "the other field is used",
            id="far future created_at falls back",
        ),
        pytest.param(
            {
                "event_id": "e3",
                "created_at": "9999-01-01T00:00:00+00:00",
                "data": {"variables": {"event_time": "9999-01-01 00:00:00"}},
            },
            None,
            "event time not usable: created_at is more than 86400 seconds in the future, "
            "data.variables.event_time is more than 86400 seconds in the future; the event "
            "has no time",
            id="both in the far future",
        ),
        pytest.param(
            {"event_id": "e4", "created_at": "0001-01-01T00:00:00+01:00"},
            None,
            "event time not usable: created_at is not a valid time; the event has no time",
            id="before year 1 in UTC",
        ),
        pytest.param(
            {"event_id": "e5", "created_at": "9999-12-31T23:59:59-01:00"},
            None,
            "event time not usable: created_at is not a valid time; the event has no time",
            id="after year 9999 in UTC",
        ),
    ],
)
def test_unusable_event_time(
    caplog: pytest.LogCaptureFixture,
    event: dict[str, Any],
    expected: datetime | None,
    warning: str | None,
) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.events.times"):
        result = read_event_time(event, clock=fixed_clock)

    assert result == expected
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ([warning] if warning else [])
    event_ids = [record.__dict__["event_id"] for record in caplog.records]
    assert event_ids == ([event["event_id"]] if warning else [])


def test_future_skew_is_configurable() -> None:
    event = {"created_at": "2026-06-01T13:00:00+00:00"}

    result = read_event_time(event, clock=fixed_clock, max_future_skew=timedelta(minutes=30))

    assert result is None
