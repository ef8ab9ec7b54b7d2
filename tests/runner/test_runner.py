"""The runner against the emulator: every action, found or absent, with both strategies."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from engine.emulator import EmulatorServer
from engine.errors import RecordNotFoundError, ZohoDataError, ZohoUnavailableError
from engine.planning.plan import (
    Action,
    FieldValue,
    LookupLink,
    Outcome,
    Plan,
    RecordMatch,
    Step,
    StepResult,
    Strategy,
    WhenAbsent,
)
from engine.runner import Runner
from engine.zoho import ZohoClient

ACCOUNT_ID = "79123456789@msisdn"
ACCOUNT_PATH = ("pb_data", "account_info", "id")
FIRST_NAME_PATH = ("pb_data", "account_info", "firstname")
PHONE_PATH = ("pb_data", "account_info", "phone1")
SIM_ID = 123456789012345678
SIM_PATH = ("pb_data", "sim_info", "i_sim_card")


def contact_step(
    action: Action = Action.FIND_OR_CREATE,
    strategy: Strategy = Strategy.UPSERT,
    when_absent: WhenAbsent = WhenAbsent.CREATE,
    *,
    extra_fields: tuple[FieldValue, ...] = (),
    skip_reason: str | None = None,
) -> Step:
    return Step(
        id="contact",
        action=action,
        module="Contacts",
        strategy=strategy,
        match=RecordMatch(field="I_PB", value=ACCOUNT_ID, source=ACCOUNT_PATH),
        duplicate_check_fields=("I_PB",),
        fields=(
            FieldValue(field="First_Name", value="Ann", source=FIRST_NAME_PATH),
            FieldValue(
                field="Last_Name", value=ACCOUNT_ID, source=ACCOUNT_PATH, on_create_only=True
            ),
            *extra_fields,
        ),
        when_absent=when_absent,
        skip_reason=skip_reason,
    )


def sim_step(
    action: Action,
    strategy: Strategy,
    when_absent: WhenAbsent,
    *,
    link_to: str | None,
) -> Step:
    return Step(
        id="sim",
        action=action,
        module="SIM_Cards",
        strategy=strategy,
        match=RecordMatch(field="I_SIM_Card", value=SIM_ID, source=SIM_PATH),
        duplicate_check_fields=("I_SIM_Card",),
        fields=(
            FieldValue(field="Status", value="Active", source=("pb_data", "sim_info", "status")),
            FieldValue(field="Name", value="SIM 8931", source=None, on_create_only=True),
        ),
        links=(LookupLink(field="Related_Contact", step_id=link_to),),
        when_absent=when_absent,
    )


def make_plan(*steps: Step) -> Plan:
    return Plan(
        event_id="3f1c7a52-0000-4000-8000-000000000001", event_type="SIM/Updated", steps=steps
    )


def seed_contact(client: ZohoClient) -> str:
    result = client.insert(
        "Contacts", [{"Last_Name": "Existing", "First_Name": "Old", "I_PB": ACCOUNT_ID}]
    )[0]
    return str(result.id)


def seed_sim(client: ZohoClient, contact_id: str | None) -> str:
    record: dict[str, Any] = {"Name": "Seeded SIM", "I_SIM_Card": SIM_ID, "Status": "Available"}
    if contact_id is not None:
        record["Related_Contact"] = {"id": contact_id}
    return str(client.insert("SIM_Cards", [record])[0].id)


CONTACT_CASES = [
    # action, strategy, when_absent, record exists, outcome, First_Name afterwards
    (Action.FIND_OR_CREATE, Strategy.UPSERT, WhenAbsent.CREATE, True, Outcome.UPDATED, "Ann"),
    (Action.FIND_OR_CREATE, Strategy.UPSERT, WhenAbsent.CREATE, False, Outcome.CREATED, "Ann"),
    (Action.FIND_OR_CREATE, Strategy.SEARCH, WhenAbsent.CREATE, True, Outcome.UPDATED, "Ann"),
    (Action.FIND_OR_CREATE, Strategy.SEARCH, WhenAbsent.CREATE, False, Outcome.CREATED, "Ann"),
    (Action.UPDATE, Strategy.UPSERT, WhenAbsent.CREATE, True, Outcome.UPDATED, "Ann"),
    (Action.UPDATE, Strategy.UPSERT, WhenAbsent.CREATE, False, Outcome.CREATED, "Ann"),
    (Action.UPDATE, Strategy.UPSERT, WhenAbsent.SKIP, True, Outcome.UPDATED, "Ann"),
    (Action.UPDATE, Strategy.UPSERT, WhenAbsent.SKIP, False, Outcome.SKIPPED, None),
    (Action.UPDATE, Strategy.SEARCH, WhenAbsent.SKIP, True, Outcome.UPDATED, "Ann"),
    (Action.UPDATE, Strategy.SEARCH, WhenAbsent.SKIP, False, Outcome.SKIPPED, None),
    (Action.FIND, Strategy.UPSERT, WhenAbsent.SKIP, True, Outcome.FOUND, "Old"),
    (Action.FIND, Strategy.UPSERT, WhenAbsent.SKIP, False, Outcome.SKIPPED, None),
    (Action.FIND, Strategy.UPSERT, WhenAbsent.CREATE, True, Outcome.FOUND, "Old"),
    (Action.FIND, Strategy.UPSERT, WhenAbsent.CREATE, False, Outcome.CREATED, "Ann"),
    (Action.FIND, Strategy.SEARCH, WhenAbsent.CREATE, True, Outcome.FOUND, "Old"),
    (Action.FIND, Strategy.SEARCH, WhenAbsent.CREATE, False, Outcome.CREATED, "Ann"),
    (Action.CREATE, Strategy.UPSERT, WhenAbsent.CREATE, False, Outcome.CREATED, "Ann"),
    (Action.CREATE, Strategy.SEARCH, WhenAbsent.CREATE, False, Outcome.CREATED, "Ann"),
]


def case_id(case: tuple[Any, ...]) -> str:
    action, strategy, when_absent, exists, _, _ = case
    state = "found" if exists else "absent"
    return f"{action} {strategy} when absent {when_absent}, {state}"


@pytest.mark.parametrize("case", CONTACT_CASES, ids=[case_id(case) for case in CONTACT_CASES])
def test_contact_step(
    case: tuple[Any, ...], emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    action, strategy, when_absent, exists, outcome, first_name = case
    seeded_id = seed_contact(client) if exists else None

    result = runner.run(make_plan(contact_step(action, strategy, when_absent)))

    step_result = result.steps[0]
    records = emulator.records("Contacts")
    assert step_result.outcome is outcome
    if seeded_id is not None:
        assert step_result.record_id == seeded_id
    if first_name is None:
        assert records == []
        assert step_result.record_id is None
    else:
        assert len(records) == 1
        assert records[0]["First_Name"] == first_name
        assert records[0]["id"] == step_result.record_id
        expected_last_name = "Existing" if exists else ACCOUNT_ID
        assert records[0]["Last_Name"] == expected_last_name


@pytest.mark.parametrize(
    "strategy",
    [pytest.param(Strategy.UPSERT, id="upsert"), pytest.param(Strategy.SEARCH, id="search")],
)
def test_when_absent_fail_names_key_path(strategy: Strategy, runner: Runner) -> None:
    with pytest.raises(RecordNotFoundError) as raised:
        runner.run(make_plan(contact_step(Action.UPDATE, strategy, WhenAbsent.FAIL)))

    assert raised.value.details[0].loc == ACCOUNT_PATH
    assert ACCOUNT_ID in raised.value.details[0].msg
    assert raised.value.message == (
        "step contact: no Contacts record has the I_PB value from pb_data.account_info.id"
    )
    assert ACCOUNT_ID not in raised.value.message


SIM_CASES = [
    # action, strategy, when_absent, SIM exists, link to contact, outcome
    (Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, True, True, Outcome.LINKED),
    (Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, False, True, Outcome.CREATED),
    (Action.LINK, Strategy.SEARCH, WhenAbsent.CREATE, True, True, Outcome.LINKED),
    (Action.LINK, Strategy.SEARCH, WhenAbsent.CREATE, False, True, Outcome.CREATED),
    (Action.LINK, Strategy.UPSERT, WhenAbsent.SKIP, False, True, Outcome.SKIPPED),
    (Action.UNLINK, Strategy.UPSERT, WhenAbsent.SKIP, True, False, Outcome.UNLINKED),
    (Action.UNLINK, Strategy.UPSERT, WhenAbsent.SKIP, False, False, Outcome.SKIPPED),
    (Action.UNLINK, Strategy.SEARCH, WhenAbsent.SKIP, True, False, Outcome.UNLINKED),
    (Action.UNLINK, Strategy.UPSERT, WhenAbsent.CREATE, True, False, Outcome.UNLINKED),
    (Action.UNLINK, Strategy.UPSERT, WhenAbsent.CREATE, False, False, Outcome.CREATED),
]


def sim_case_id(case: tuple[Any, ...]) -> str:
    action, strategy, when_absent, exists, _, _ = case
    state = "found" if exists else "absent"
    return f"{action} {strategy} when absent {when_absent}, {state}"


@pytest.mark.parametrize("case", SIM_CASES, ids=[sim_case_id(case) for case in SIM_CASES])
def test_sim_link_step(
    case: tuple[Any, ...], emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    action, strategy, when_absent, exists, linked, outcome = case
    contact_id = seed_contact(client)
    if exists:
        # A SIM to link starts unlinked; a SIM to unlink starts linked.
        seed_sim(client, None if linked else contact_id)
    plan = make_plan(
        contact_step(),
        sim_step(action, strategy, when_absent, link_to="contact" if linked else None),
    )

    result = runner.run(plan)

    sim_result = result.steps[1]
    sims = emulator.records("SIM_Cards")
    assert sim_result.outcome is outcome
    if outcome is Outcome.SKIPPED:
        assert sims == []
        return
    assert len(sims) == 1
    assert sims[0]["id"] == sim_result.record_id
    expected_link = contact_id if linked else None
    link = sims[0]["Related_Contact"]
    assert (link["id"] if link else None) == expected_link
    assert sims[0]["Status"] == "Active"
    expected_name = "Seeded SIM" if exists else "SIM 8931"
    assert sims[0]["Name"] == expected_name


def test_create_only_field_not_sent_to_existing(
    emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    seed_contact(client)

    result = runner.run(make_plan(contact_step()))

    upserts = emulator.request_log("upsert")
    assert len(upserts) == 1
    assert "Last_Name" not in upserts[0]["body"]["data"][0]
    assert result.steps[0].zoho_calls == 1


def test_create_only_field_sent_when_absent(emulator: EmulatorServer, runner: Runner) -> None:
    result = runner.run(make_plan(contact_step()))

    upserts = emulator.request_log("upsert")
    assert [entry["status"] for entry in upserts] == [400, 200]
    assert upserts[1]["body"]["data"][0]["Last_Name"] == ACCOUNT_ID
    assert result.steps[0].zoho_calls == 2
    assert emulator.request_log("search") == []


def test_known_record_id_skips_search(
    emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    contact_id = seed_contact(client)

    class Journal:
        def get(self, module: str, field: str, value: Any) -> str | None:
            return (
                contact_id if (module, field, value) == ("Contacts", "I_PB", ACCOUNT_ID) else None
            )

    result = runner.run(
        make_plan(contact_step(Action.UPDATE, Strategy.SEARCH, WhenAbsent.SKIP)),
        known_record_ids=Journal(),
    )

    assert result.steps[0].outcome is Outcome.UPDATED
    assert result.steps[0].record_id == contact_id
    assert len(emulator.request_log("get")) == 1
    assert emulator.request_log("search") == []


def test_stale_known_record_id_falls_back_to_search(
    emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    contact_id = seed_contact(client)

    class Journal:
        def get(self, module: str, field: str, value: Any) -> str | None:
            return "5725767000009999999"

    result = runner.run(
        make_plan(contact_step(Action.UPDATE, Strategy.SEARCH, WhenAbsent.SKIP)),
        known_record_ids=Journal(),
    )

    assert result.steps[0].record_id == contact_id
    assert len(emulator.request_log("search")) == 1


def test_completed_steps_reused_without_calls(
    emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    contact_id = seed_contact(client)
    emulator.clear_log()
    earlier = StepResult(
        step_id="contact",
        module="Contacts",
        action=Action.FIND_OR_CREATE,
        outcome=Outcome.UPDATED,
        record_id=contact_id,
        zoho_calls=1,
    )
    plan = make_plan(
        contact_step(), sim_step(Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, link_to="contact")
    )

    result = runner.run(plan, completed={"contact": earlier})

    assert result.steps[0] is earlier
    modules_called = {
        entry["module"] for entry in emulator.request_log() if entry["operation"] != "token"
    }
    assert modules_called == {"SIM_Cards"}
    assert emulator.records("SIM_Cards")[0]["Related_Contact"]["id"] == contact_id


def test_on_step_called_in_order(runner: Runner) -> None:
    seen: list[tuple[str, Outcome]] = []
    plan = make_plan(
        contact_step(), sim_step(Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, link_to="contact")
    )

    runner.run(
        plan, on_step=lambda step_result: seen.append((step_result.step_id, step_result.outcome))
    )

    assert seen == [("contact", Outcome.CREATED), ("sim", Outcome.CREATED)]


def test_data_error_names_field_and_event_path(runner: Runner) -> None:
    phone = FieldValue(field="Phone", value="call me maybe", source=PHONE_PATH)

    with pytest.raises(ZohoDataError) as raised:
        runner.run(make_plan(contact_step(extra_fields=(phone,))))

    detail = raised.value.details[0]
    assert detail.loc == PHONE_PATH
    assert "Contacts.Phone" in detail.msg
    assert detail.type == "zoho.invalid_data"
    assert "call me maybe" not in raised.value.message


def test_too_long_text_names_maximum_length(runner: Runner) -> None:
    long_name = FieldValue(field="First_Name", value="x" * 41, source=FIRST_NAME_PATH)

    with pytest.raises(ZohoDataError) as raised:
        runner.run(make_plan(contact_step(extra_fields=(long_name,))))

    assert raised.value.details[0].loc == FIRST_NAME_PATH
    assert "at most 40 characters" in raised.value.details[0].msg


def test_skip_reason_makes_no_calls(emulator: EmulatorServer, runner: Runner) -> None:
    result = runner.run(make_plan(contact_step(skip_reason="condition is false")))

    assert result.steps[0].outcome is Outcome.SKIPPED
    assert result.steps[0].reason == "condition is false"
    assert result.steps[0].zoho_calls == 0
    assert emulator.request_log() == []


def test_upsert_safe_under_search_lag(emulator: EmulatorServer, runner: Runner) -> None:
    emulator.update_settings(search_lag_seconds=60)

    first = runner.run(make_plan(contact_step()))
    second = runner.run(make_plan(contact_step()))

    assert first.steps[0].outcome is Outcome.CREATED
    assert second.steps[0].outcome is Outcome.UPDATED
    assert len(emulator.records("Contacts")) == 1


def test_token_expiry_mid_run(emulator: EmulatorServer, runner: Runner) -> None:
    plan = make_plan(
        contact_step(), sim_step(Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, link_to="contact")
    )

    result = runner.run(plan, on_step=lambda _: emulator.expire_tokens())

    assert [step.outcome for step in result.steps] == [Outcome.CREATED, Outcome.CREATED]
    assert len(emulator.request_log("token")) == 2


def test_unavailable_zoho_raises_with_retry_after(emulator: EmulatorServer, runner: Runner) -> None:
    emulator.add_fault(
        operation="upsert",
        status=503,
        count=50,
        body={"code": "INTERNAL_ERROR", "details": {}, "message": "down", "status": "error"},
    )

    with pytest.raises(ZohoUnavailableError) as raised:
        runner.run(make_plan(contact_step()), deadline=time.monotonic() + 0.5)

    assert raised.value.retry_after is not None
    assert raised.value.retry_after >= 1.0


def test_ignored_plan_makes_no_calls(emulator: EmulatorServer, runner: Runner) -> None:
    plan = Plan(event_id="e", event_type="Account/Updated", steps=(), ignored=True)

    result = runner.run(plan)

    assert result.steps == []
    assert emulator.request_log() == []


def test_search_duplicates_use_oldest(
    emulator: EmulatorServer, client: ZohoClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Without a unique key field, an org can hold two records with the same key.
    step = Step(
        id="contact",
        action=Action.UPDATE,
        module="Contacts",
        strategy=Strategy.SEARCH,
        match=RecordMatch(field="Email", value="twin@example.com", source=("email",)),
        fields=(FieldValue(field="First_Name", value="Ann", source=FIRST_NAME_PATH),),
        when_absent=WhenAbsent.SKIP,
    )
    oldest = client.insert("Contacts", [{"Last_Name": "One", "Email": "twin@example.com"}])[0]
    client.insert("Contacts", [{"Last_Name": "Two", "Email": "twin@example.com"}])

    result = Runner(client).run(make_plan(step))

    assert result.steps[0].record_id == oldest.id
    assert "several records have the same key; using the oldest" in caplog.messages


def test_search_lag_duplicate_updated_instead(emulator: EmulatorServer, runner: Runner) -> None:
    # The search misses the record the first run created, so the second run's insert hits
    # the unique I_PB and Zoho names the existing record, which is then updated.
    emulator.update_settings(search_lag_seconds=60)
    step = contact_step(Action.FIND_OR_CREATE, Strategy.SEARCH)

    first = runner.run(make_plan(step))
    second = runner.run(make_plan(step))

    assert first.steps[0].outcome is Outcome.CREATED
    assert second.steps[0].outcome is Outcome.UPDATED
    assert second.steps[0].record_id == first.steps[0].record_id
    assert len(emulator.records("Contacts")) == 1
    assert second.steps[0].zoho_calls == 3


class SteppedClock:
    """A monotonic clock that a test moves forward by hand."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def test_spent_budget_stops_before_next_step(emulator: EmulatorServer, client: ZohoClient) -> None:
    clock = SteppedClock()
    runner = Runner(client, clock=clock)
    deadline = clock.now + 10.0
    done: list[str] = []

    def spend_budget(result: StepResult) -> None:
        done.append(result.step_id)
        clock.now = deadline

    plan = make_plan(
        contact_step(), sim_step(Action.LINK, Strategy.UPSERT, WhenAbsent.CREATE, link_to="contact")
    )
    with pytest.raises(ZohoUnavailableError) as raised:
        runner.run(plan, deadline=deadline, on_step=spend_budget)

    assert done == ["contact"]
    assert raised.value.retry_after == 1.0
    assert "before step sim" in raised.value.message
    assert emulator.request_log("upsert")[-1]["module"] == "Contacts"
    assert emulator.records("SIM_Cards") == []


def test_spent_budget_ignores_skipped_steps(client: ZohoClient) -> None:
    clock = SteppedClock()
    runner = Runner(client, clock=clock)

    result = runner.run(
        make_plan(contact_step(skip_reason="condition is false")), deadline=clock.now - 1.0
    )

    assert [step.outcome for step in result.steps] == [Outcome.SKIPPED]


class KnownIds:
    """Record ids as the journal would return them."""

    def __init__(self, ids: dict[tuple[str, str, Any], str]) -> None:
        self.ids = ids

    def get(self, module: str, field: str, value: Any) -> str | None:
        return self.ids.get((module, field, value))


def seed_contact_named_ann(client: ZohoClient) -> str:
    result = client.insert(
        "Contacts", [{"Last_Name": "Existing", "First_Name": "Ann", "I_PB": ACCOUNT_ID}]
    )[0]
    return str(result.id)


@pytest.mark.parametrize(
    ("seeded_first_name", "outcome", "updates"),
    [
        pytest.param("Ann", Outcome.UNCHANGED, 0, id="same value not written"),
        pytest.param("Old", Outcome.UPDATED, 1, id="different value written"),
    ],
)
def test_search_compares_found_record(
    emulator: EmulatorServer,
    client: ZohoClient,
    runner: Runner,
    seeded_first_name: str,
    outcome: Outcome,
    updates: int,
) -> None:
    client.insert(
        "Contacts", [{"Last_Name": "Existing", "First_Name": seeded_first_name, "I_PB": ACCOUNT_ID}]
    )

    result = runner.run(make_plan(contact_step(Action.FIND_OR_CREATE, Strategy.SEARCH)))

    assert result.steps[0].outcome is outcome
    assert len(emulator.request_log("update")) == updates
    assert emulator.records("Contacts")[0]["First_Name"] == "Ann"


def test_known_id_unchanged_record_not_written(
    emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    contact_id = seed_contact_named_ann(client)
    known = KnownIds({("Contacts", "I_PB", ACCOUNT_ID): contact_id})

    result = runner.run(
        make_plan(contact_step(Action.UPDATE, Strategy.SEARCH, WhenAbsent.SKIP)),
        known_record_ids=known,
    )

    assert result.steps[0].outcome is Outcome.UNCHANGED
    assert result.steps[0].record_id == contact_id
    assert result.steps[0].zoho_calls == 1
    assert emulator.request_log("update") == []
    assert emulator.request_log("search") == []


@pytest.mark.parametrize(
    ("linked_to_contact", "outcome"),
    [
        pytest.param(True, Outcome.UNCHANGED, id="already linked"),
        pytest.param(False, Outcome.LINKED, id="linked to nobody"),
    ],
)
def test_search_link_compares_lookup(
    emulator: EmulatorServer,
    client: ZohoClient,
    runner: Runner,
    linked_to_contact: bool,
    outcome: Outcome,
) -> None:
    contact_id = seed_contact_named_ann(client)
    client.insert(
        "SIM_Cards",
        [
            {
                "Name": "Seeded SIM",
                "I_SIM_Card": SIM_ID,
                "Status": "Active",
                "Related_Contact": {"id": contact_id} if linked_to_contact else None,
            }
        ],
    )
    plan = make_plan(
        contact_step(Action.FIND_OR_CREATE, Strategy.SEARCH),
        sim_step(Action.LINK, Strategy.SEARCH, WhenAbsent.CREATE, link_to="contact"),
    )

    result = runner.run(plan)

    assert result.steps[1].outcome is outcome
    assert emulator.records("SIM_Cards")[0]["Related_Contact"]["id"] == contact_id


def test_upsert_reports_written_values_as_updated(
    emulator: EmulatorServer, client: ZohoClient, runner: Runner
) -> None:
    # The upsert strategy does not read the record, so equal values still count as written.
    seed_contact_named_ann(client)

    result = runner.run(make_plan(contact_step()))

    assert result.steps[0].outcome is Outcome.UPDATED
    assert len(emulator.request_log("upsert")) == 1


def test_data_error_without_source_names_field(runner: Runner) -> None:
    # A value computed by an expression that reads several event paths has no source.
    phone = FieldValue(field="Phone", value="call me maybe", source=None)

    with pytest.raises(ZohoDataError) as raised:
        runner.run(make_plan(contact_step(extra_fields=(phone,))))

    assert raised.value.details[0].loc == ("Contacts", "Phone")
    assert "Contacts.Phone" in raised.value.details[0].msg


def test_data_error_on_lookup_names_linked_key(runner: Runner) -> None:
    # The contact step ran in an earlier attempt, and its record was deleted in Zoho since.
    deleted_contact = StepResult(
        step_id="contact",
        module="Contacts",
        action=Action.FIND_OR_CREATE,
        outcome=Outcome.CREATED,
        record_id="5725767000009999999",
    )
    plan = make_plan(
        contact_step(),
        sim_step(Action.FIND_OR_CREATE, Strategy.UPSERT, WhenAbsent.CREATE, link_to="contact"),
    )

    with pytest.raises(ZohoDataError) as raised:
        runner.run(plan, completed={"contact": deleted_contact})

    assert raised.value.details[0].loc == ACCOUNT_PATH
    assert "SIM_Cards.Related_Contact" in raised.value.details[0].msg


def test_when_absent_fail_without_key_path(runner: Runner) -> None:
    step = dataclasses.replace(
        contact_step(Action.UPDATE, Strategy.SEARCH, WhenAbsent.FAIL),
        match=RecordMatch(field="I_PB", value=ACCOUNT_ID, source=None),
    )

    with pytest.raises(RecordNotFoundError) as raised:
        runner.run(make_plan(step))

    assert raised.value.details[0].loc == ("Contacts", "I_PB")
