"""Step routes, and the calls `plan` shows checked against what the runner sends to the emulator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.emulator import EmulatorServer
from engine.planning.plan import Action, RecordMatch, Step, Strategy, WhenAbsent
from engine.planning.planner import Planner
from engine.planning.render import describe_alternatives, describe_operation
from engine.planning.routes import Route, step_route
from engine.runner import Runner
from engine.zoho import ZohoClient, ZohoSettings

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path for path in GOLDEN.iterdir() if path.is_dir())
MATCH = RecordMatch("I_PB", "x", None)
RECORD_OPERATIONS = {"search", "get", "insert", "update", "upsert"}


def step(
    action: Action, strategy: Strategy, when_absent: WhenAbsent, skip_reason: str | None = None
) -> Step:
    return Step(
        id="s",
        action=action,
        module="Contacts",
        strategy=strategy,
        match=None if action is Action.CREATE else MATCH,
        duplicate_check_fields=("I_PB",),
        when_absent=when_absent,
        skip_reason=skip_reason,
    )


@pytest.mark.parametrize(
    ("planned", "route"),
    [
        pytest.param(
            step(Action.UPDATE, Strategy.UPSERT, WhenAbsent.CREATE, "x is absent"),
            Route.NONE,
            id="skipped step",
        ),
        pytest.param(
            step(Action.CREATE, Strategy.SEARCH, WhenAbsent.CREATE), Route.INSERT, id="create"
        ),
        pytest.param(
            step(Action.FIND_OR_CREATE, Strategy.UPSERT, WhenAbsent.SKIP),
            Route.UPSERT,
            id="find_or_create always creates",
        ),
        pytest.param(
            step(Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE),
            Route.UPSERT,
            id="link that creates",
        ),
        pytest.param(
            step(Action.UNLINK, Strategy.UPSERT, WhenAbsent.SKIP),
            Route.LOOKUP,
            id="unlink that skips",
        ),
        pytest.param(
            step(Action.FIND, Strategy.UPSERT, WhenAbsent.CREATE),
            Route.LOOKUP,
            id="find never upserts first",
        ),
        pytest.param(
            step(Action.FIND_OR_CREATE, Strategy.SEARCH, WhenAbsent.CREATE),
            Route.LOOKUP,
            id="search strategy",
        ),
    ],
)
def test_step_route(planned: Step, route: Route) -> None:
    assert step_route(planned) == route


def described_operations(text: str) -> list[str]:
    """Return the client operations named in rendered text, in order."""
    operations = []
    for method, path in re.findall(r"(GET|PUT|POST) /crm/v8/(\S+)", text):
        if method == "GET":
            operations.append("search" if "/search?" in path else "get")
        elif method == "PUT":
            operations.append("update")
        else:
            operations.append("upsert" if path.endswith("/upsert") else "insert")
    if "upsert is sent again" in text:
        operations.append("upsert")
    return operations


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(scope="module")
def runner(emulator: EmulatorServer) -> Iterator[Runner]:
    settings = ZohoSettings(
        accounts_url=emulator.url,
        api_domain=emulator.url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        refresh_token=emulator.refresh_token,
    )
    with ZohoClient(settings) as client:
        yield Runner(client)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.parametrize("attempt", ["new records", "existing records"])
def test_runner_makes_described_calls(
    emulator: EmulatorServer, runner: Runner, case: Path, attempt: str
) -> None:
    """Every call the runner sends for a step is named in that step's plan output, and the
    first one is the first call of the normal path."""
    plan = Planner.from_directory().plan(json.loads((case / "event.json").read_text("utf-8")))
    emulator.reset()
    if attempt == "existing records":
        runner.run(plan)
    emulator.clear_log()

    result = runner.run(plan)

    # A reset clears the access tokens, so a call may get a 401 response and be sent again.
    sent = [
        entry["operation"]
        for entry in emulator.request_log()
        if entry["operation"] in RECORD_OPERATIONS and entry["status"] != 401
    ]
    for planned, step_result in zip(plan.steps, result.steps, strict=True):
        calls, sent = sent[: step_result.zoho_calls], sent[step_result.zoho_calls :]
        normal = described_operations(describe_operation(planned))
        described = set(normal) | set(
            described_operations(" ".join(describe_alternatives(planned)))
        )
        assert calls[:1] == normal[:1], planned.id
        assert set(calls) <= described, planned.id
    assert sent == []
