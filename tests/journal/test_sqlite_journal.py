"""SqliteJournal: file safety, event states, the record-id cache and concurrent writers."""

from __future__ import annotations

import gc
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.journal import EventFacts, EventOutcome, KnownRecordIds, SqliteJournal
from engine.journal.base import record_key_text
from engine.journal.sqlite import JournalSchemaError
from engine.planning.plan import Action, Outcome, RecordKey, StepResult

T0 = datetime(2025, 3, 12, 16, 47, 30, 443939, tzinfo=UTC)
CONTACT = RecordKey("Contacts", "I_PB", "79123456789@msisdn")
SIM = RecordKey("SIM_Cards", "I_SIM_Card", 3793)


def facts(event_id: str = "e1", **changes: object) -> EventFacts:
    values: dict[str, object] = {
        "event_id": event_id,
        "event_type": "SIM/Updated",
        "account_key": "79123456789@msisdn",
        "sim_keys": ("3793",),
        "event_time": T0,
        "body": {"event_id": event_id, "data": {"event_type": "SIM/Updated"}},
    }
    values.update(changes)
    return EventFacts(**values)  # type: ignore[arg-type]


def step(step_id: str = "contact", outcome: Outcome = Outcome.CREATED, record_id: str = "1001"):
    return StepResult(step_id, "Contacts", Action.FIND_OR_CREATE, outcome, record_id, None, 1)


@pytest.fixture
def journal(tmp_path: Path):
    journal = SqliteJournal(tmp_path / "var" / "journal.sqlite3")
    yield journal
    journal.close()


def test_file_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "journal.sqlite3"
    journal = SqliteJournal(path)
    journal.start_attempt(facts())

    modes = {
        name: stat.S_IMODE((path.parent / name).stat().st_mode)
        for name in ("journal.sqlite3", "journal.sqlite3-wal", "journal.sqlite3-shm")
    }
    journal.close()

    assert modes == {
        "journal.sqlite3": 0o600,
        "journal.sqlite3-wal": 0o600,
        "journal.sqlite3-shm": 0o600,
    }
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_existing_file_permissions_tightened(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)

    SqliteJournal(path).close()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wal_mode_and_busy_timeout(journal: SqliteJournal) -> None:
    connection = sqlite3.connect(journal.path)
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()

    assert mode == "wal"
    assert journal._connection().execute("PRAGMA busy_timeout").fetchone()[0] == 10000


def test_newer_schema_rejected(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version=99")
    connection.close()

    with pytest.raises(JournalSchemaError, match="schema version 99"):
        SqliteJournal(path)


def test_unknown_event_is_none(journal: SqliteJournal) -> None:
    assert journal.get("missing") is None


UUID_LOWER = "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb"


@pytest.mark.parametrize(
    ("stored_as", "looked_up_as", "found_as"),
    [
        pytest.param(UUID_LOWER.upper(), UUID_LOWER, UUID_LOWER, id="upper then lower"),
        pytest.param(UUID_LOWER, UUID_LOWER.upper(), UUID_LOWER, id="lower then upper"),
        pytest.param("Event-A", "Event-A", "Event-A", id="id that is not a UUID"),
    ],
)
def test_uuid_event_ids_ignore_case(
    journal: SqliteJournal, stored_as: str, looked_up_as: str, found_as: str
) -> None:
    journal.start_attempt(facts(stored_as))
    journal.finish(stored_as, EventOutcome.PROCESSED, [step()])

    entry, started = journal.start_attempt(facts(looked_up_as))

    assert started is False
    assert entry.event_id == found_as
    assert entry.outcome is EventOutcome.PROCESSED
    assert [listed.event_id for listed in journal.list_events()] == [found_as]


def test_other_case_of_non_uuid_is_other_event(journal: SqliteJournal) -> None:
    journal.start_attempt(facts("Event-A"))

    assert journal.get("event-a") is None


def test_first_attempt_stores_facts(journal: SqliteJournal) -> None:
    entry, started = journal.start_attempt(facts())

    assert started is True
    assert entry.outcome is EventOutcome.IN_PROGRESS
    assert entry.attempts == 1
    assert entry.event_type == "SIM/Updated"
    assert entry.account_key == "79123456789@msisdn"
    assert entry.sim_keys == ("3793",)
    assert entry.event_time == T0
    assert entry.steps == ()


def test_body_loaded_only_on_request(journal: SqliteJournal) -> None:
    journal.start_attempt(facts())

    assert journal.get("e1").body is None  # type: ignore[union-attr]
    assert journal.get("e1", with_body=True).body == {  # type: ignore[union-attr]
        "event_id": "e1",
        "data": {"event_type": "SIM/Updated"},
    }


@pytest.mark.parametrize(
    ("outcome", "expected_started"),
    [
        pytest.param(EventOutcome.PROCESSED, False, id="processed event is not restarted"),
        pytest.param(EventOutcome.STALE, False, id="stale event is not restarted"),
        pytest.param(EventOutcome.IGNORED, False, id="ignored event is not restarted"),
        pytest.param(EventOutcome.FAILED, True, id="failed event is restarted"),
        pytest.param(EventOutcome.IN_PROGRESS, True, id="interrupted event is restarted"),
    ],
)
def test_second_attempt_by_outcome(
    journal: SqliteJournal, outcome: EventOutcome, expected_started: bool
) -> None:
    journal.start_attempt(facts())
    if outcome is EventOutcome.FAILED:
        journal.fail(
            facts(), error_code="zoho_unavailable", error_message="down", count_attempt=False
        )
    elif outcome is not EventOutcome.IN_PROGRESS:
        journal.finish("e1", outcome, [step()])

    entry, started = journal.start_attempt(facts())

    assert started is expected_started
    assert entry.attempts == (2 if expected_started else 1)


def test_restart_keeps_completed_steps(journal: SqliteJournal) -> None:
    journal.start_attempt(facts())
    journal.record_step("e1", step(), key=CONTACT, event_time=T0, applied=True)
    journal.fail(
        facts(),
        error_code="zoho_unavailable",
        error_message="Zoho CRM is down",
        count_attempt=False,
    )

    entry, _ = journal.start_attempt(facts())

    assert entry.completed_steps == {"contact": step()}


def test_failure_stores_error(journal: SqliteJournal) -> None:
    journal.fail(
        facts(), error_code="invalid_event", error_message="event_id is missing", count_attempt=True
    )

    entry = journal.get("e1")

    assert entry is not None
    assert (entry.outcome, entry.attempts, entry.error_code, entry.error_message) == (
        EventOutcome.FAILED,
        1,
        "invalid_event",
        "event_id is missing",
    )


def test_finish_clears_error(journal: SqliteJournal) -> None:
    journal.fail(facts(), error_code="zoho_unavailable", error_message="down", count_attempt=True)
    journal.start_attempt(facts())

    entry = journal.finish("e1", EventOutcome.PROCESSED, [step()])

    assert (entry.outcome, entry.error_code, entry.error_message, entry.steps) == (
        EventOutcome.PROCESSED,
        None,
        None,
        (step(),),
    )


def test_receive_keeps_existing_state(journal: SqliteJournal) -> None:
    journal.start_attempt(facts())
    journal.finish("e1", EventOutcome.PROCESSED, [step()])

    journal.receive(facts())

    assert journal.get("e1").outcome is EventOutcome.PROCESSED  # type: ignore[union-attr]


def test_duplicates_counted(journal: SqliteJournal) -> None:
    journal.start_attempt(facts())
    journal.finish("e1", EventOutcome.PROCESSED, [])

    journal.note_duplicate("e1")
    journal.note_duplicate("e1")

    assert journal.get("e1").duplicates == 2  # type: ignore[union-attr]


def test_step_replaces_same_step_id(journal: SqliteJournal) -> None:
    journal.start_attempt(facts())
    journal.record_step(
        "e1", step(outcome=Outcome.CREATED), key=CONTACT, event_time=T0, applied=True
    )
    journal.record_step(
        "e1", step(outcome=Outcome.UNCHANGED), key=CONTACT, event_time=T0, applied=True
    )

    assert journal.get("e1").steps == (step(outcome=Outcome.UNCHANGED),)  # type: ignore[union-attr]


def test_record_id_learned_from_step(journal: SqliteJournal) -> None:
    journal.start_attempt(facts())
    journal.record_step(
        "e1", step(record_id="5725767000000411001"), key=SIM, event_time=T0, applied=True
    )

    lookup = KnownRecordIds(journal)

    assert lookup.get("SIM_Cards", "I_SIM_Card", 3793) == "5725767000000411001"
    assert lookup.get("SIM_Cards", "I_SIM_Card", "3793") == "5725767000000411001"
    assert lookup.get("SIM_Cards", "I_SIM_Card", 3794) is None
    assert lookup.get("Contacts", "I_SIM_Card", 3793) is None


def test_skipped_step_keeps_record_id(journal: SqliteJournal) -> None:
    journal.start_attempt(facts())
    journal.record_step("e1", step(record_id="1001"), key=CONTACT, event_time=T0, applied=True)
    skipped = StepResult("contact", "Contacts", Action.UPDATE, Outcome.SKIPPED, None)
    journal.record_step("e1", skipped, key=CONTACT, event_time=None, applied=False)

    assert journal.record_id(CONTACT.module, CONTACT.field, CONTACT.value) == "1001"


@pytest.mark.parametrize(
    ("writes", "expected"),
    [
        pytest.param([(T0, True)], T0, id="first applied time is kept"),
        pytest.param(
            [(T0, True), (T0 + timedelta(seconds=5), True)],
            T0 + timedelta(seconds=5),
            id="newer time moves the mark forward",
        ),
        pytest.param(
            [(T0, True), (T0 - timedelta(seconds=5), True)],
            T0,
            id="older time never moves the mark back",
        ),
        pytest.param(
            [(T0, True), (T0 + timedelta(seconds=5), False)],
            T0,
            id="step that did not apply leaves the mark",
        ),
        pytest.param([(T0, True), (None, True)], T0, id="event without time leaves the mark"),
        pytest.param([(None, True)], None, id="event without time sets no mark"),
    ],
)
def test_newest_applied_time(
    journal: SqliteJournal, writes: list[tuple[datetime | None, bool]], expected: datetime | None
) -> None:
    for number, (event_time, applied) in enumerate(writes):
        journal.record_step(
            f"e{number}", step(), key=CONTACT, event_time=event_time, applied=applied
        )

    newest = journal.newest_applied([CONTACT, SIM])

    assert (newest[CONTACT].event_time if CONTACT in newest else None) == expected
    assert SIM not in newest


def test_newest_applied_names_event(journal: SqliteJournal) -> None:
    journal.record_step("older", step(), key=CONTACT, event_time=T0, applied=True)
    journal.record_step("newer", step(), key=CONTACT, event_time=T0 + timedelta(1), applied=True)

    assert journal.newest_applied([CONTACT])[CONTACT].event_id == "newer"


def test_list_filters(journal: SqliteJournal) -> None:
    journal.start_attempt(facts("done"))
    journal.finish("done", EventOutcome.PROCESSED, [])
    journal.fail(
        facts("broken"), error_code="zoho_unavailable", error_message="down", count_attempt=True
    )
    journal.start_attempt(facts("interrupted"))
    journal.receive(facts("waiting"))

    every = [entry.event_id for entry in journal.list_events()]
    unfinished = {entry.event_id for entry in journal.list_events(unfinished_only=True)}
    future = journal.list_events(since=datetime.now(UTC) + timedelta(hours=1))

    assert every == ["waiting", "interrupted", "broken", "done"]
    assert unfinished == {"broken", "interrupted", "waiting"}
    assert future == []
    assert len(journal.list_events(limit=2)) == 2


def test_list_oldest_first(journal: SqliteJournal) -> None:
    for event_id in ("first", "second", "third"):
        journal.fail(
            facts(event_id), error_code="zoho_unavailable", error_message="down", count_attempt=True
        )

    oldest = journal.list_events(oldest_first=True)
    oldest_two = journal.list_events(unfinished_only=True, limit=2, oldest_first=True)
    newest_two = journal.list_events(unfinished_only=True, limit=2)

    assert [entry.event_id for entry in oldest] == ["first", "second", "third"]
    assert [entry.event_id for entry in oldest_two] == ["first", "second"]
    assert [entry.event_id for entry in newest_two] == ["third", "second"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(3793, "3793", id="integer"),
        pytest.param(3793.0, "3793", id="whole float"),
        pytest.param("3793", "3793", id="numeric string"),
        pytest.param("79123456789@msisdn", "79123456789@msisdn", id="account id"),
        pytest.param(True, "true", id="boolean"),
    ],
)
def test_record_key_text(value: object, expected: str) -> None:
    assert record_key_text(value) == expected


def test_concurrent_threads(journal: SqliteJournal) -> None:
    def work(worker: int) -> None:
        for number in range(25):
            event_id = f"t{worker}-{number}"
            journal.start_attempt(facts(event_id))
            journal.record_step(event_id, step(), key=CONTACT, event_time=T0, applied=True)
            journal.finish(event_id, EventOutcome.PROCESSED, [step()])

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    entries = journal.list_events()

    assert len(entries) == 200
    assert {entry.outcome for entry in entries} == {EventOutcome.PROCESSED}


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    from engine.journal import EventFacts, SqliteJournal
    journal = SqliteJournal(sys.argv[1])
    for number in range(50):
        # Every process attempts the same shared event and its own events.
        journal.start_attempt(EventFacts(event_id="shared", event_type="SIM/Updated"))
        journal.start_attempt(EventFacts(event_id=f"{sys.argv[2]}-{number}", event_type="x"))
    journal.close()
    """
)


@pytest.mark.slow
def test_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    SqliteJournal(path).close()

    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path), f"p{number}"])
        for number in range(4)
    ]
    codes = [writer.wait(timeout=120) for writer in writers]
    journal = SqliteJournal(path)

    assert codes == [0, 0, 0, 0]
    assert journal.get("shared").attempts == 200  # type: ignore[union-attr]
    assert len(journal.list_events()) == 201
    journal.close()


def test_thread_connections_closed_on_exit(journal: SqliteJournal) -> None:
    journal.get("e1")

    threads = [threading.Thread(target=journal.get, args=("e1",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.collect()

    assert journal.connection_count == 1
