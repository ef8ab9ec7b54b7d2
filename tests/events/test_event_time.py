"""When an event happened: created_at first, then data.variables.event_time, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
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
