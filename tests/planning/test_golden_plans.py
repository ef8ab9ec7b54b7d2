"""Golden cases: each folder under golden/ contains an event and the exact plan it must produce.

To add a case, create golden/<case>/event.json and golden/<case>/expected-plan.json; the
expected plan is `zoho-connector plan event.json --format json`, checked by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.planning.planner import Planner
from engine.planning.render import plan_as_dict

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path for path in GOLDEN.iterdir() if path.is_dir())


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner.from_directory()


def test_golden_folder_has_cases() -> None:
    assert len(CASES) >= 13


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_golden_plan(planner: Planner, case: Path) -> None:
    event = json.loads((case / "event.json").read_text(encoding="utf-8"))
    expected = json.loads((case / "expected-plan.json").read_text(encoding="utf-8"))

    plan = planner.plan(event)

    assert plan_as_dict(plan) == expected
