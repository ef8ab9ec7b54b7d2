"""EventProcessor against the emulator over real HTTP: duplicates, ordering, concurrency, faults."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.emulator.server import EmulatorServer
from engine.errors import (
    EventNotFoundError,
    EventValidationError,
    NoActionPlanError,
    RateLimitError,
    ZohoRateLimitError,
    ZohoUnavailableError,
)
from engine.journal import EventOutcome
from engine.planning.plan import Action, Outcome, RecordKey, StepResult
from engine.planning.planner import Planner

from .stack import (
    ACCOUNT,
    Stack,
    build_stack,
    comparable,
    eid,
    make_event,
)

REPO = Path(__file__).resolve().parents[2]
CONTACT_KEY = RecordKey("Contacts", "I_PB", ACCOUNT)


def test_same_event_ten_times_writes_once(stack: Stack) -> None:
    event = make_event("e-1")

    results = [stack.processor.process(event) for _ in range(10)]
    entry = stack.journal.get(eid("e-1"))

    assert [result.outcome for result in results] == ["processed"] + ["duplicate"] * 9
    assert [result.status for result in results] == [202] * 10
    assert [result.zoho_calls for result in results[1:]] == [0] * 9
    assert len(stack.writes()) == results[0].zoho_calls
    assert results[9].body["steps"] == results[0].body["steps"]
    assert results[9].body["message"] == "duplicate, the event was already processed"
    assert entry is not None
    assert (entry.outcome, entry.attempts, entry.duplicates) == (EventOutcome.PROCESSED, 1, 9)


def test_duplicate_makes_no_zoho_call(stack: Stack) -> None:
    stack.processor.process(make_event("e-1"))
    stack.emulator.clear_log()

    stack.processor.process(make_event("e-1"))

    assert stack.emulator.request_log() == []


def test_answer_lists_steps(stack: Stack) -> None:
    result = stack.processor.process(make_event("e-1", "SIM/Created"))
    contact_id = stack.records("Contacts")[0]["id"]
    sim_id = stack.records("SIM_Cards")[0]["id"]

    assert result.body == {
        "message": "event processed",
        "event_id": eid("e-1"),
        "event_type": "SIM/Created",
        "outcome": "processed",
        "steps": [
            {
                "step": "contact",
                "module": "Contacts",
                "action": "find_or_create",
                "outcome": "created",
                "record_id": contact_id,
            },
            {
                "step": "sim",
                "module": "SIM_Cards",
                "action": "find_or_create",
                "outcome": "created",
                "record_id": sim_id,
            },
        ],
    }


def test_record_ids_learned(stack: Stack) -> None:
    stack.processor.process(make_event("e-1"))

    contact_id = stack.records("Contacts")[0]["id"]
    sim_id = stack.records("SIM_Cards")[0]["id"]

    assert stack.journal.record_id("Contacts", "I_PB", ACCOUNT) == contact_id
    assert stack.journal.record_id("SIM_Cards", "I_SIM_Card", 3793) == sim_id


@pytest.mark.slow
def test_concurrent_events_one_new_account(stack: Stack) -> None:
    stack.emulator.update_settings(search_lag_seconds=60.0)
    events = [
        make_event(
            f"e-{number}", "SIM/Created", at=timedelta(seconds=number), i_sim_card=4000 + number
        )
        for number in range(20)
    ]
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def deliver(event: dict) -> None:
        try:
            outcomes.append(stack.processor.process(event).outcome)
        except BaseException as error:  # noqa: BLE001 - reported through the list
            errors.append(error)

    threads = [threading.Thread(target=deliver, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert outcomes == ["processed"] * 20
    assert len(stack.records("Contacts")) == 1
    assert len(stack.records("SIM_Cards")) == 20
    contact_id = stack.records("Contacts")[0]["id"]
    assert {sim["Related_Contact"]["id"] for sim in stack.records("SIM_Cards")} == {contact_id}


@pytest.mark.slow
def test_created_then_updated_under_search_lag(stack: Stack) -> None:
    stack.emulator.update_settings(search_lag_seconds=60.0)

    created = stack.processor.process(make_event("e-1", "SIM/Created", sim_status="available"))
    time.sleep(0.1)
    updated = stack.processor.process(
        make_event("e-2", "SIM/Updated", at=timedelta(seconds=1), sim_status="active")
    )
    contacts = stack.records("Contacts")
    sims = stack.records("SIM_Cards")

    assert (created.outcome, updated.outcome) == ("processed", "processed")
    assert len(contacts) == 1
    assert len(sims) == 1
    assert sims[0]["Related_Contact"]["id"] == contacts[0]["id"]
    assert sims[0]["Status"] == "Active"


def test_older_event_after_newer_is_stale(stack: Stack) -> None:
    stack.processor.process(
        make_event("newer", at=timedelta(minutes=5), product_name="Gold", sim_status="used")
    )
    writes_before = len(stack.writes())

    older = stack.processor.process(
        make_event("older", product_name="Bronze", sim_status="available")
    )
    entry = stack.journal.get(eid("older"))

    assert older.outcome == "stale"
    assert older.body["message"] == "stale, skipped"
    assert older.zoho_calls == 0
    assert len(stack.writes()) == writes_before
    assert stack.records("Contacts")[0]["Product_Name_PB"] == "Gold"
    assert stack.records("SIM_Cards")[0]["Status"] == "Used"
    assert entry is not None
    assert entry.outcome is EventOutcome.STALE


FAR_FUTURE = "9999-01-01T00:00:00+00:00"


def test_far_future_time_is_not_remembered(stack: Stack) -> None:
    # A planner whose clock is wrong passes the far-future time on, so the processor's own
    # check is what keeps it out of the journal.
    wrong_clock = datetime(9998, 12, 31, 12, tzinfo=UTC)
    stack.processor.planner = Planner.from_directory(clock=lambda: wrong_clock)
    future = make_event("future", product_name="Gold")
    future["created_at"] = FAR_FUTURE
    stack.processor.process(future)

    later = stack.processor.process(
        make_event("later", at=timedelta(minutes=5), product_name="Silver")
    )
    older = stack.processor.process(make_event("older", product_name="Bronze"))

    assert later.outcome == "processed"
    assert older.outcome == "stale"
    assert stack.records("Contacts")[0]["Product_Name_PB"] == "Silver"
    assert stack.journal.newest_applied([CONTACT_KEY])[CONTACT_KEY].event_id == eid("later")


def test_remembered_far_future_time_is_replaced(stack: Stack) -> None:
    # A journal written before the skew check existed can remember a far-future time.
    stack.processor.process(make_event("first", product_name="Gold"))
    result = StepResult("contact", "Contacts", Action.FIND_OR_CREATE, Outcome.UPDATED, None)
    stack.journal.record_step(
        eid("first"),
        result,
        key=CONTACT_KEY,
        event_time=datetime.fromisoformat(FAR_FUTURE),
        applied=True,
    )

    later = stack.processor.process(
        make_event("later", at=timedelta(minutes=5), product_name="Silver")
    )
    older = stack.processor.process(make_event("older", product_name="Bronze"))

    assert later.outcome == "processed"
    assert later.body["message"] == "event processed"
    assert older.outcome == "stale"
    assert stack.records("Contacts")[0]["Product_Name_PB"] == "Silver"
    assert stack.journal.newest_applied([CONTACT_KEY])[CONTACT_KEY].event_id == eid("later")


def test_stale_event_arriving_again_is_duplicate(stack: Stack) -> None:
    stack.processor.process(make_event("newer", at=timedelta(minutes=5)))
    stack.processor.process(make_event("older"))

    again = stack.processor.process(make_event("older"))

    assert again.outcome == "duplicate"
    assert again.body["previous_outcome"] == "stale"


def test_same_time_is_not_stale(stack: Stack) -> None:
    stack.processor.process(make_event("first", product_name="Gold"))

    second = stack.processor.process(make_event("second", product_name="Silver"))

    assert second.outcome == "processed"
    assert stack.records("Contacts")[0]["Product_Name_PB"] == "Silver"


def test_event_without_time_never_stale(stack: Stack) -> None:
    stack.processor.process(make_event("newer", at=timedelta(minutes=5), product_name="Gold"))
    untimed = make_event("untimed", product_name="Silver")
    del untimed["created_at"]

    result = stack.processor.process(untimed)

    assert result.outcome == "processed"
    assert stack.records("Contacts")[0]["Product_Name_PB"] == "Silver"


def test_moved_sim_stays_with_newer_account(stack: Stack) -> None:
    # Account B's SIM/Replaced (newer) takes SIM 3793; account A's older SIM/Updated arrives late.
    stack.processor.process(make_event("a-first", account="a@msisdn", i_sim_card=3793))
    stack.processor.process(
        make_event(
            "b-replaced",
            "SIM/Replaced",
            at=timedelta(minutes=10),
            account="b@msisdn",
            i_sim_card=3793,
            prev_i_sim_card=5000,
        )
    )

    late = stack.processor.process(
        make_event(
            "a-late",
            at=timedelta(minutes=5),
            account="a@msisdn",
            i_sim_card=3793,
            product_name="Late product",
        )
    )
    contacts = {contact["I_PB"]: contact for contact in stack.records("Contacts")}
    sims = {sim["I_SIM_Card"]: sim for sim in stack.records("SIM_Cards")}

    assert late.outcome == "processed"
    assert late.body["message"] == "event processed, 1 stale step(s) skipped"
    assert [step["outcome"] for step in late.body["steps"]] == ["updated", "skipped"]
    assert contacts["a@msisdn"]["Product_Name_PB"] == "Late product"
    assert sims[3793]["Related_Contact"]["id"] == contacts["b@msisdn"]["id"]
    assert sims[5000].get("Related_Contact") is None


def test_second_step_fails_then_resumes(
    stack: Stack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    stack.emulator.add_fault(
        kind="status",
        status=500,
        count=100,
        module="SIM_Cards",
        body={
            "code": "INTERNAL_ERROR",
            "message": "internal error",
            "status": "error",
            "details": {},
        },
    )
    event = make_event("e-1", "SIM/Created")

    with pytest.raises(ZohoUnavailableError) as failure:
        stack.processor.process(event)
    failed = stack.journal.get(eid("e-1"))
    stack.emulator.clear_faults()
    stack.emulator.clear_log()
    resumed = stack.processor.process(event)
    resumed_writes = [(entry["operation"], entry["module"]) for entry in stack.writes()]

    with EmulatorServer() as clean_emulator:
        clean = build_stack(clean_emulator, tmp_path / "clean")
        clean.processor.process(event)
        expected_contacts = comparable(clean.records("Contacts"))
        expected_sims = comparable(clean.records("SIM_Cards"))
        clean.journal.close()
        clean.client.close()

    assert failure.value.retry_after is not None
    assert failed is not None
    assert (failed.outcome, failed.error_code) == (EventOutcome.FAILED, "zoho_unavailable")
    assert [step.step_id for step in failed.steps] == ["contact"]
    assert resumed.outcome == "processed"
    assert resumed_writes == [("upsert", "SIM_Cards")]
    assert comparable(stack.records("Contacts")) == expected_contacts
    assert comparable(stack.records("SIM_Cards")) == expected_sims
    assert stack.journal.get(eid("e-1")).attempts == 2  # type: ignore[union-attr]


@pytest.mark.slow
def test_rate_limit_storm_loses_no_event(stack: Stack) -> None:
    stack.emulator.add_fault(
        kind="status",
        status=429,
        count=10_000,
        operation="upsert",
        body={
            "code": "TOO_MANY_REQUESTS",
            "message": "too many requests",
            "status": "error",
            "details": {},
        },
        headers={"Retry-After": "1"},
    )
    stack.processor.budget_seconds = 1.0
    events = [
        make_event(
            f"e-{number}",
            "SIM/Created",
            at=timedelta(seconds=number),
            account=f"{number}@msisdn",
            i_sim_card=6000 + number,
        )
        for number in range(10)
    ]

    errors = []
    for event in events:
        with pytest.raises(ZohoRateLimitError) as failure:
            stack.processor.process(event)
        errors.append(failure.value)
    failed = stack.journal.list_events(unfinished_only=True)
    stack.emulator.clear_faults()
    replayed = [stack.processor.replay(entry.event_id) for entry in reversed(failed)]

    assert [error.retry_after is not None and error.retry_after >= 1 for error in errors] == [
        True
    ] * 10
    assert len(failed) == 10
    assert {result.outcome for result in replayed} == {"processed"}
    assert len(stack.records("Contacts")) == 10
    assert len(stack.records("SIM_Cards")) == 10


def test_invalid_event_journaled_as_failed(stack: Stack) -> None:
    event = make_event("bad-1")
    del event["pb_data"]["account_info"]["id"]

    with pytest.raises(EventValidationError):
        stack.processor.process(event)
    entry = stack.journal.get(eid("bad-1"), with_body=True)

    assert entry is not None
    assert (entry.outcome, entry.attempts, entry.error_code) == (
        EventOutcome.FAILED,
        1,
        "invalid_event",
    )
    assert entry.body == event
    assert stack.emulator.request_log() == []


def test_event_type_without_plan_journaled(stack: Stack) -> None:
    event = make_event("unknown-1", "Account/Blocked")

    with pytest.raises(NoActionPlanError):
        stack.processor.process(event)
    entry = stack.journal.get(eid("unknown-1"))

    assert entry is not None
    assert (entry.outcome, entry.error_code) == (EventOutcome.FAILED, "no_action_plan")


def test_event_without_id_not_journaled(stack: Stack) -> None:
    event = make_event("x")
    del event["event_id"]

    with pytest.raises(EventValidationError):
        stack.processor.process(event)

    assert stack.journal.list_events() == []


def test_ignored_event_type(emulator: EmulatorServer, tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    plans = mappings / "action-plans.yaml"
    plans.write_text(plans.read_text().replace("ignore: []", "ignore: [Account/Blocked]"))
    ignoring = build_stack(emulator, tmp_path, mappings_dir=mappings)

    first = ignoring.processor.process(make_event("i-1", "Account/Blocked"))
    second = ignoring.processor.process(make_event("i-1", "Account/Blocked"))
    ignoring.journal.close()
    ignoring.client.close()

    assert (first.outcome, first.steps, first.zoho_calls) == ("ignored", (), 0)
    assert second.outcome == "duplicate"
    assert emulator.request_log() == []


def test_replay_unknown_event(stack: Stack) -> None:
    with pytest.raises(EventNotFoundError, match="not in the journal"):
        stack.processor.replay("missing")


def test_replay_finished_event_is_duplicate(stack: Stack) -> None:
    stack.processor.process(make_event("e-1"))

    replayed = stack.processor.replay(eid("e-1"))

    assert replayed.outcome == "duplicate"


def test_same_event_concurrently_writes_once(stack: Stack) -> None:
    event = make_event("e-1", "SIM/Created")
    outcomes: list[str] = []

    def deliver() -> None:
        outcomes.append(stack.processor.process(event).outcome)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    upserts = [entry for entry in stack.writes() if entry["module"] == "Contacts"]

    assert sorted(outcomes) == ["duplicate"] * 9 + ["processed"]
    assert len(upserts) == 1
    assert len(stack.records("SIM_Cards")) == 1


def test_busy_record_answers_rate_limit(stack: Stack) -> None:
    event = make_event("e-1")
    plan = stack.processor.planner.plan(event)
    stack.processor.budget_seconds = 0.4
    held = threading.Event()
    release = threading.Event()

    def hold_locks() -> None:
        with stack.processor.locks.hold(plan.record_keys, deadline=time.monotonic() + 60):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_locks)
    holder.start()
    held.wait(30)
    with pytest.raises(RateLimitError) as failure:
        stack.processor.process(event)
    release.set()
    holder.join(30)
    entry = stack.journal.get(eid("e-1"))
    retried = stack.processor.process(event)

    assert failure.value.retry_after == 1.0
    assert entry is not None
    assert entry.outcome is EventOutcome.RECEIVED
    assert retried.outcome == "processed"


@pytest.fixture
def search_stack(emulator: EmulatorServer, tmp_path: Path):
    """A stack whose mappings find records by search, as for an org without unique fields."""
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    modules = mappings / "modules.yaml"
    text = modules.read_text().replace("strategy: upsert", "strategy: search")
    modules.write_text(
        text.replace("    duplicate_check_fields: [I_PB]\n", "").replace(
            "    duplicate_check_fields: [I_SIM_Card]\n", ""
        )
    )
    built = build_stack(emulator, tmp_path, mappings_dir=mappings)
    yield built
    built.journal.close()
    built.client.close()


@pytest.mark.slow
def test_search_strategy_uses_known_ids(search_stack: Stack) -> None:
    search_stack.emulator.update_settings(search_lag_seconds=60.0)
    # One event time for all, so that none is stale and every event runs its steps.
    events = [make_event(f"e-{number}", "SIM/Created") for number in range(5)]
    outcomes: list[str] = []

    def deliver(event: dict) -> None:
        outcomes.append(search_stack.processor.process(event).outcome)

    threads = [threading.Thread(target=deliver, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert outcomes == ["processed"] * 5
    assert len(search_stack.records("Contacts")) == 1
    assert len(search_stack.records("SIM_Cards")) == 1
    assert len(search_stack.emulator.request_log("insert")) == 2


@pytest.fixture
def no_unique_search_stack(tmp_path: Path) -> Iterator[Stack]:
    """A search stack on an emulator whose modules have no unique field.

    Zoho then accepts a second contact with the same I_PB, as an org without "Do not allow
    duplicate values" on the field does.
    """
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    modules = mappings / "modules.yaml"
    text = modules.read_text().replace("strategy: upsert", "strategy: search")
    modules.write_text(
        text.replace("    duplicate_check_fields: [I_PB]\n", "").replace(
            "    duplicate_check_fields: [I_SIM_Card]\n", ""
        )
    )
    crm_modules = mappings / "crm-modules.yaml"
    definitions = crm_modules.read_text()
    assert ", unique: true}" in definitions
    crm_modules.write_text(definitions.replace(", unique: true}", "}"))
    with EmulatorServer(modules_path=crm_modules) as emulator:
        built = build_stack(emulator, tmp_path, mappings_dir=mappings)
        yield built
        built.journal.close()
        built.client.close()


@pytest.mark.slow
def test_concurrent_events_one_new_account_by_search(no_unique_search_stack: Stack) -> None:
    # Search finds nothing for 60 s and no field is unique, so only the record lock and the
    # journal's record ids keep 20 events for one new account from each inserting a contact.
    search_stack = no_unique_search_stack
    search_stack.emulator.update_settings(search_lag_seconds=60.0)
    events = [
        make_event(
            f"e-{number}", "SIM/Created", at=timedelta(seconds=number), i_sim_card=4000 + number
        )
        for number in range(20)
    ]
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def deliver(event: dict) -> None:
        try:
            outcomes.append(search_stack.processor.process(event).outcome)
        except BaseException as error:  # noqa: BLE001 - reported through the list
            errors.append(error)

    threads = [threading.Thread(target=deliver, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    contacts = search_stack.records("Contacts")
    assert errors == []
    assert outcomes == ["processed"] * 20
    assert len(contacts) == 1
    assert len(search_stack.records("SIM_Cards")) == 20
    assert {sim["Related_Contact"]["id"] for sim in search_stack.records("SIM_Cards")} == {
        contacts[0]["id"]
    }


def test_spent_budget_answers_unavailable_then_resumes(stack: Stack) -> None:
    # Each of the three steps takes at least 0.8 s, so they cannot all finish within 1 s.
    stack.processor.budget_seconds = 1.0
    stack.emulator.update_settings(latency_seconds=0.8)
    event = make_event("e-1", "SIM/Replaced", prev_i_sim_card=5000)

    with pytest.raises(ZohoUnavailableError) as failure:
        stack.processor.process(event)
    failed = stack.journal.get(eid("e-1"))
    stack.emulator.update_settings(latency_seconds=0.0)
    resumed = stack.processor.process(event)

    assert failure.value.retry_after is not None
    assert failed is not None
    assert failed.outcome is EventOutcome.FAILED
    assert resumed.outcome == "processed"
    assert len(stack.records("Contacts")) == 1
    assert sorted(record["I_SIM_Card"] for record in stack.records("SIM_Cards")) == [3793, 5000]
