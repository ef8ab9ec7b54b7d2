"""The Zoho calls shown for each kind of step: the normal path and its alternatives."""

from __future__ import annotations

import pytest

from engine.planning.plan import (
    Action,
    FieldValue,
    LookupLink,
    RecordMatch,
    Step,
    Strategy,
    WhenAbsent,
)
from engine.planning.render import describe_alternatives, describe_operation

MATCH = RecordMatch("I_PB", "Smith, J (x)", ("pb_data", "account_info", "id"))
WRITTEN = FieldValue("Email", "j@example.com", ("pb_data", "account_info", "email"))
CREATE_ONLY = FieldValue("Last_Name", "x", ("pb_data", "account_info", "id"), on_create_only=True)


def step(
    action: Action,
    strategy: Strategy,
    when_absent: WhenAbsent,
    skip_reason: str | None = None,
    fields: tuple[FieldValue, ...] = (WRITTEN,),
    links: tuple[LookupLink, ...] = (),
) -> Step:
    return Step(
        id="contact",
        action=action,
        module="Contacts",
        strategy=strategy,
        match=None if action is Action.CREATE else MATCH,
        duplicate_check_fields=("I_PB",) if strategy is Strategy.UPSERT else (),
        fields=fields,
        links=links,
        when_absent=when_absent,
        skip_reason=skip_reason,
    )


SEARCH = r"GET /crm/v8/Contacts/search?criteria=(I_PB:equals:Smith\, J \(x\)) (exact re-check)"
UPSERT = "POST /crm/v8/Contacts/upsert duplicate_check_fields=[I_PB]"
UPDATE = "PUT /crm/v8/Contacts with the record id, unless the record already has the values"
KNOWN_ID = (
    "when the journal stores the record's id: GET /crm/v8/Contacts/{id} first, and the search "
    "only if that record is gone or its key changed"
)
SECOND_UPSERT = (
    "when Zoho returns MANDATORY_NOT_FOUND for Last_Name, which is written on create only: "
    "the upsert is sent again with Last_Name"
)
CREATE_ONLY_UPDATE = (
    "when the upsert inserts the record: PUT /crm/v8/Contacts writes Last_Name to it by id"
)
DUPLICATE = (
    "when the insert fails with DUPLICATE_DATA on I_PB, because the search missed a new record: "
    "PUT /crm/v8/Contacts updates that record"
)


@pytest.mark.parametrize(
    ("planned", "operation", "alternatives"),
    [
        pytest.param(
            step(Action.FIND_OR_CREATE, Strategy.UPSERT, WhenAbsent.CREATE),
            UPSERT,
            [],
            id="find_or_create with upsert",
        ),
        pytest.param(
            step(
                Action.FIND_OR_CREATE,
                Strategy.UPSERT,
                WhenAbsent.CREATE,
                fields=(WRITTEN, CREATE_ONLY),
            ),
            UPSERT,
            [SECOND_UPSERT, CREATE_ONLY_UPDATE],
            id="upsert with a create-only field",
        ),
        pytest.param(
            step(
                Action.UNLINK,
                Strategy.UPSERT,
                WhenAbsent.SKIP,
                fields=(),
                links=(LookupLink("Related_Contact", None),),
            ),
            f"{SEARCH}; found: {UPDATE}; absent: skip",
            [KNOWN_ID],
            id="unlink that skips an absent record",
        ),
        pytest.param(
            step(Action.UPDATE, Strategy.UPSERT, WhenAbsent.SKIP, fields=(CREATE_ONLY,)),
            f"{SEARCH}; found: no write; absent: skip",
            [KNOWN_ID],
            id="update with only create-only fields",
        ),
        pytest.param(
            step(Action.FIND_OR_CREATE, Strategy.SEARCH, WhenAbsent.CREATE),
            f"{SEARCH}; found: {UPDATE}; absent: POST /crm/v8/Contacts",
            [KNOWN_ID, DUPLICATE],
            id="find_or_create with search",
        ),
        pytest.param(
            step(Action.FIND, Strategy.UPSERT, WhenAbsent.FAIL),
            f"{SEARCH}; absent: fail",
            [KNOWN_ID],
            id="find that fails",
        ),
        pytest.param(
            step(Action.FIND, Strategy.UPSERT, WhenAbsent.CREATE, fields=(WRITTEN, CREATE_ONLY)),
            f"{SEARCH}; absent: {UPSERT}",
            [KNOWN_ID, SECOND_UPSERT, CREATE_ONLY_UPDATE],
            id="find that creates by upsert",
        ),
        pytest.param(
            step(Action.CREATE, Strategy.UPSERT, WhenAbsent.CREATE),
            "POST /crm/v8/Contacts",
            [],
            id="create",
        ),
        pytest.param(
            step(Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, skip_reason="x is absent"),
            "no call (skipped)",
            [],
            id="skipped step",
        ),
    ],
)
def test_described_calls(planned: Step, operation: str, alternatives: list[str]) -> None:
    assert describe_operation(planned) == operation
    assert describe_alternatives(planned) == alternatives


def test_boolean_key_as_in_search() -> None:
    planned = Step(
        id="contact",
        action=Action.UPDATE,
        module="Contacts",
        strategy=Strategy.SEARCH,
        match=RecordMatch("Blocked_PB", True, None),
        fields=(WRITTEN,),
        when_absent=WhenAbsent.SKIP,
    )

    assert describe_operation(planned) == (
        "GET /crm/v8/Contacts/search?criteria=(Blocked_PB:equals:true) (exact re-check); "
        f"found: {UPDATE}; absent: skip"
    )
