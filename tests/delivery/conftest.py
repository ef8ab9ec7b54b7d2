"""Fixtures: a real emulator over HTTP, a real client, runner, planner, journal and processor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.emulator.server import EmulatorServer

from .stack import Stack, build_stack


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def stack(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Stack]:
    built = build_stack(emulator, tmp_path)
    yield built
    built.journal.close()
    built.client.close()
