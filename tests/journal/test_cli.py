"""`zoho-connector events` and `replay` on a real journal, replaying against the emulator."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from delivery.stack import Stack, build_stack, eid, make_event

from engine.cli import main
from engine.emulator.server import EmulatorServer
from engine.errors import ZohoUnavailableError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def stack(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    """A processor with one processed and one failed event, and the environment `replay` reads."""
    built = build_stack(emulator, tmp_path)
    built.processor.process(make_event("done", "SIM/Created"))
    emulator.add_fault(
        kind="status", status=503, count=1000, operation="upsert", module="SIM_Cards"
    )
    with pytest.raises(ZohoUnavailableError):
        built.processor.process(
            make_event("broken", "SIM/Created", at=timedelta(seconds=5), i_sim_card=4000)
        )
    emulator.clear_faults()

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "JOURNAL_PATH": str(built.journal.path),
        "API_TOKEN": "cli-test-token-0123456789",
        "ZOHO_CRM_ACCOUNTS_URL": emulator.url,
        "ZOHO_CRM_API_DOMAIN": emulator.url,
        "ZOHO_CRM_CLIENT_ID": "sandbox-client",
        "ZOHO_CRM_CLIENT_SECRET": "sandbox-secret",
        "ZOHO_CRM_REFRESH_TOKEN": "sandbox-refresh-token",
        "ZOHO_CRM_TOKEN_FILE": str(tmp_path / "cli-token.json"),
        "LOCK_DIR": str(tmp_path / "locks"),
        "MAPPINGS_DIR": str(REPO / "mappings"),
        "SCHEMAS_DIR": str(REPO / "schemas"),
    }.items():
        monkeypatch.setenv(name, value)
    yield built
    built.journal.close()
    built.client.close()


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    status = main([*argv, "--format", "json"])
    return status, json.loads(capsys.readouterr().out)


def test_events_lists_newest_first(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    status, listed = run_json(capsys, "events")

    assert status == 0
    assert isinstance(listed, list)
    assert [item["event_id"] for item in listed] == [eid("broken"), eid("done")]
    assert [item["outcome"] for item in listed] == ["failed", "processed"]
    assert listed[0]["error"] == "zoho_unavailable"
    assert listed[0]["account_key"] == "79123456789@msisdn"
    assert listed[0]["sim_keys"] == ["4000"]
    assert [step["step"] for step in listed[0]["steps"]] == ["contact"]


SECRET_VARIABLES = (
    "API_TOKEN",
    "ZOHO_CRM_CLIENT_ID",
    "ZOHO_CRM_CLIENT_SECRET",
    "ZOHO_CRM_REFRESH_TOKEN",
)


@pytest.mark.parametrize(
    ("file_name", "options"),
    [
        pytest.param(".env", [], id="default env file"),
        pytest.param("journal.env", ["--env-file", "journal.env"], id="named env file"),
    ],
)
def test_events_reads_env_file_without_secrets(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    file_name: str,
    options: list[str],
) -> None:
    for name in (*SECRET_VARIABLES, "JOURNAL_PATH"):
        monkeypatch.delenv(name)
    (tmp_path / file_name).write_text(f"JOURNAL_PATH={stack.journal.path}\n")

    status, listed = run_json(capsys, "events", *options)

    assert status == 0
    assert [item["event_id"] for item in listed] == [eid("broken"), eid("done")]  # type: ignore[union-attr]


def test_events_invalid_env_file_is_usage_error(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.env").write_text("PORT=eighty\n")

    status = main(["events", "--env-file", "bad.env"])

    assert status == 2
    assert "PORT='eighty' is not an integer from 0 to 65535" in capsys.readouterr().err


def test_replay_reads_env_file(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = []
    for name in (*SECRET_VARIABLES, "JOURNAL_PATH", "ZOHO_CRM_ACCOUNTS_URL", "ZOHO_CRM_API_DOMAIN"):
        lines.append(f"{name}={os.environ[name]}")
        monkeypatch.delenv(name)
    (tmp_path / "replay.env").write_text("\n".join(lines) + "\n")

    status, replayed = run_json(capsys, "replay", eid("broken"), "--env-file", "replay.env")

    assert status == 0
    assert [item["outcome"] for item in replayed] == ["processed"]  # type: ignore[union-attr]


def test_events_failed_only(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    status, listed = run_json(capsys, "events", "--failed")

    assert status == 0
    assert [item["event_id"] for item in listed] == [eid("broken")]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("since", "expected_count"),
    [
        pytest.param("1h", 2, id="age covers both"),
        pytest.param("2000-01-01", 2, id="old date covers both"),
        pytest.param("2999-01-01T00:00:00+00:00", 0, id="future time covers none"),
    ],
)
def test_events_since(
    stack: Stack, capsys: pytest.CaptureFixture[str], since: str, expected_count: int
) -> None:
    _, listed = run_json(capsys, "events", "--since", since)

    assert len(listed) == expected_count  # type: ignore[arg-type]


def test_events_text_table(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["events", "--limit", "1"])
    lines = capsys.readouterr().out.splitlines()

    assert status == 0
    assert lines[0].split() == [
        "RECEIVED",
        "(UTC)",
        "EVENT",
        "ID",
        "TYPE",
        "OUTCOME",
        "ATTEMPTS",
        "ACCOUNT",
        "ERROR",
    ]
    assert len(lines) == 2
    assert eid("broken") in lines[1]
    assert "zoho_unavailable:" in lines[1]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["events", "--since", "yesterday"], id="since not a time"),
        pytest.param(["events", "--since", "99999999999d"], id="since before the year 1"),
        pytest.param(["events", "--limit", "0"], id="limit zero"),
        pytest.param(["replay"], id="replay without target"),
        pytest.param(["replay", "x", "--failed"], id="replay with both targets"),
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == 2


def test_replay_one_event(
    stack: Stack, emulator: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, replayed = run_json(capsys, "replay", eid("broken"))
    entry = stack.journal.get(eid("broken"))

    assert status == 0
    assert [item["outcome"] for item in replayed] == ["processed"]  # type: ignore[union-attr]
    assert entry is not None
    assert entry.outcome == "processed"
    assert len(emulator.records("SIM_Cards")) == 2


def test_replay_failed_events(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    status, replayed = run_json(capsys, "replay", "--failed")

    assert status == 0
    assert [(item["event_id"], item["outcome"]) for item in replayed] == [  # type: ignore[union-attr]
        (eid("broken"), "processed")
    ]
    assert stack.journal.list_events(unfinished_only=True) == []


def test_replay_failed_limit_takes_oldest(
    stack: Stack, emulator: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.add_fault(kind="status", status=503, count=1000, operation="upsert")
    with pytest.raises(ZohoUnavailableError):
        stack.processor.process(
            make_event("broken-2", "SIM/Created", at=timedelta(seconds=9), i_sim_card=4001)
        )
    emulator.clear_faults()

    status, replayed = run_json(capsys, "replay", "--failed", "--limit", "1")
    newer = stack.journal.get(eid("broken-2"))

    assert status == 0
    assert [(item["event_id"], item["outcome"]) for item in replayed] == [  # type: ignore[union-attr]
        (eid("broken"), "processed")
    ]
    assert newer is not None
    assert newer.outcome == "failed"


def test_replay_finished_event_is_duplicate(
    stack: Stack, emulator: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.clear_log()

    status = main(["replay", eid("done")])
    output = capsys.readouterr().out

    assert status == 0
    assert output == f"{eid('done')}  duplicate  duplicate, the event was already processed\n"
    assert emulator.request_log() == []


def test_replay_unknown_event(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["replay", "missing"])
    output = capsys.readouterr().out

    assert status == 1
    assert output.startswith("missing  failed  event_not_found: event missing is not in")


def test_replay_stops_while_zoho_down(
    stack: Stack,
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.add_fault(kind="status", status=503, count=1000, operation="upsert")
    with pytest.raises(ZohoUnavailableError):
        stack.processor.process(
            make_event("broken-2", "SIM/Created", at=timedelta(seconds=9), i_sim_card=4001)
        )
    monkeypatch.setenv("EVENT_TIME_BUDGET_SECONDS", "1")

    status, replayed = run_json(capsys, "replay", "--failed")

    assert status == 1
    assert [(item["event_id"], item["error"]) for item in replayed] == [  # type: ignore[union-attr]
        (eid("broken"), "zoho_unavailable"),
        (eid("broken-2"), "not_replayed"),
    ]


@pytest.mark.parametrize(
    "argv",
    [pytest.param(["events"], id="events"), pytest.param(["replay", "--failed"], id="replay")],
)
def test_missing_journal(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("JOURNAL_PATH", str(tmp_path / "absent.sqlite3"))

    status = main(argv)

    assert status == 2
    assert "absent.sqlite3 not found" in capsys.readouterr().err
    assert not (tmp_path / "absent.sqlite3").exists()


def write_not_a_database(path: Path) -> None:
    path.write_text("this is not an SQLite file\n" * 100)


def write_newer_journal(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 999")
    connection.close()


@pytest.mark.parametrize(
    "argv",
    [pytest.param(["events"], id="events"), pytest.param(["replay", "--failed"], id="replay")],
)
@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        pytest.param(
            lambda path: path.mkdir(),
            "error: journal {path} is not a regular file; set JOURNAL_PATH or --journal to the "
            "service's journal file\n",
            id="directory",
        ),
        pytest.param(
            write_not_a_database,
            "error: journal {path} cannot be read: file is not a database; set JOURNAL_PATH or "
            "--journal to the service's journal file\n",
            id="not an SQLite file",
        ),
        pytest.param(
            write_newer_journal,
            "error: journal {path} has schema version 999, newer than 1; upgrade the connector "
            "or use another JOURNAL_PATH; set JOURNAL_PATH or --journal to the service's "
            "journal file\n",
            id="journal of a newer connector",
        ),
    ],
)
def test_unusable_journal_is_usage_error(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    prepare: Callable[[Path], None],
    expected: str,
) -> None:
    path = tmp_path / "unusable"
    prepare(path)
    monkeypatch.setenv("JOURNAL_PATH", str(path))

    status = main(argv)
    captured = capsys.readouterr()

    assert status == 2
    assert captured.err == expected.format(path=path)
    assert captured.out == ""


def test_events_reads_while_journal_locked(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = sqlite3.connect(stack.journal.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        status, listed = run_json(capsys, "events")
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert status == 0
    assert [entry["event_id"] for entry in listed] == [  # type: ignore[union-attr]
        eid("broken"),
        eid("done"),
    ]


def test_events_into_closed_pipe_exits_0(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed_pipe = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", closed_pipe)

    try:
        status = main(["events", "--format", "json"])
    finally:
        closed_pipe.close()

    assert status == 0
