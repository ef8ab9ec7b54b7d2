"""`build_service` and `Service`: resources opened for the app and released on close."""

from __future__ import annotations

import logging

import pytest

from engine.service.wiring import Service


def test_close_runs_closers_in_reverse() -> None:
    service = Service()
    closed: list[str] = []
    service.add_closer(lambda: closed.append("client"))
    service.add_closer(lambda: closed.append("journal"))

    service.close()
    service.close()

    assert closed == ["journal", "client"]


def test_failing_closer_is_logged_and_others_run(caplog: pytest.LogCaptureFixture) -> None:
    service = Service()
    closed: list[str] = []

    def fail() -> None:
        raise OSError("disk gone")

    service.add_closer(lambda: closed.append("client"))
    service.add_closer(fail)

    with caplog.at_level(logging.ERROR, logger="engine.service"):
        service.close()

    assert closed == ["client"]
    assert [record.message for record in caplog.records] == ["releasing a service resource failed"]
