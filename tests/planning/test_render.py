"""The Zoho operation shown for each kind of step."""

from __future__ import annotations

import pytest

from engine.planning.plan import Action, RecordMatch, Step, Strategy, WhenAbsent
from engine.planning.render import describe_operation

MATCH = RecordMatch("I_PB", "Smith, J (x)", ("pb_data", "account_info", "id"))


def step(
    action: Action, strategy: Strategy, when_absent: WhenAbsent, skip_reason: str | None = None
) -> Step:
    return Step(
        id="contact",
        action=action,
        module="Contacts",
        strategy=strategy,
        match=None if action is Action.CREATE else MATCH,
        duplicate_check_fields=("I_PB",) if strategy is Strategy.UPSERT else (),
        when_absent=when_absent,
        skip_reason=skip_reason,
    )


SEARCH = r"GET /crm/v8/Contacts/search?criteria=(I_PB:equals:Smith\, J \(x\)) (exact re-check)"


@pytest.mark.parametrize(
    ("planned", "expected"),
    [
        pytest.param(
            step(Action.FIND_OR_CREATE, Strategy.UPSERT, WhenAbsent.CREATE),
            "POST /crm/v8/Contacts/upsert duplicate_check_fields=[I_PB]",
            id="find_or_create with upsert",
        ),
        pytest.param(
            step(Action.UNLINK, Strategy.UPSERT, WhenAbsent.SKIP),
            f"{SEARCH}; found: PUT /crm/v8/Contacts/{{id}}; absent: skip",
            id="unlink that skips an absent record",
        ),
        pytest.param(
            step(Action.FIND_OR_CREATE, Strategy.SEARCH, WhenAbsent.CREATE),
            f"{SEARCH}; found: PUT /crm/v8/Contacts/{{id}}; absent: POST /crm/v8/Contacts",
            id="find_or_create with search",
        ),
        pytest.param(
            step(Action.FIND, Strategy.UPSERT, WhenAbsent.FAIL),
            f"{SEARCH}; absent: fail",
            id="find",
        ),
        pytest.param(
            step(Action.CREATE, Strategy.UPSERT, WhenAbsent.CREATE),
            "POST /crm/v8/Contacts",
            id="create",
        ),
        pytest.param(
            step(Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, skip_reason="x is absent"),
            "no call (skipped)",
            id="skipped step",
        ),
    ],
)
def test_describe_operation(planned: Step, expected: str) -> None:
    assert describe_operation(planned) == expected
