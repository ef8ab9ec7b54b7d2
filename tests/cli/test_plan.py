"""`zoho-connector plan` through the command-line entry point."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

REPOSITORY = Path(__file__).parents[2]
GOLDEN = REPOSITORY / "tests" / "planning" / "golden"
PUBLISHED_EXAMPLE = GOLDEN / "sim-updated-published-example"

PUBLISHED_PLAN_TEXT = """\
event 3e84c79f-ab6f-4546-8e27-0b6ab866f1fb SIM/Updated (2025-03-12T16:47:30.443939+00:00)

1. contact: find_or_create Contacts (upsert)
   normal path: POST /crm/v8/Contacts/upsert duplicate_check_fields=[I_PB]
   otherwise, when Zoho returns MANDATORY_NOT_FOUND for Last_Name, which is written on create \
only: the upsert is sent again with Last_Name
   otherwise, when the upsert inserts the record: PUT /crm/v8/Contacts writes Last_Name to it \
by id
   match I_PB = "79123456789@msisdn"
   Last_Name = "79123456789@msisdn"  (on create only)  <- pb_data.account_info.id
   Bill_Status_PB = "Open"  <- pb_data.account_info.bill_status
   Billing_Model_PB = "Credit Account"  <- pb_data.account_info.billing_model
   Blocked_PB = false  <- pb_data.account_info.blocked
   Product_Name_PB = "wtl Pay as you go"  <- pb_data.account_info.product_name
   I_Account_PB = 1  <- pb_data.account_info.i_account
   I_PB = "79123456789@msisdn"  <- pb_data.account_info.id

2. sim: find_or_create SIM_Cards (upsert)
   normal path: POST /crm/v8/SIM_Cards/upsert duplicate_check_fields=[I_SIM_Card]
   match I_SIM_Card = 3793
   I_SIM_Card = 3793  <- pb_data.sim_info.i_sim_card
   IMSI = "001010000020349"  <- pb_data.sim_info.imsi
   MSISDN = "79123456789"  <- pb_data.sim_info.msisdn
   Status = "Active"  <- pb_data.sim_info.status
   Name = "79123456789"
   Related_Contact = record id of step contact
"""


def write_event(tmp_path: Path, body: Any) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def test_published_example_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["plan", str(PUBLISHED_EXAMPLE / "event.json")])

    assert status == 0
    assert capsys.readouterr().out == PUBLISHED_PLAN_TEXT


def test_published_example_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((PUBLISHED_EXAMPLE / "expected-plan.json").read_text(encoding="utf-8"))

    status = main(["plan", str(PUBLISHED_EXAMPLE / "event.json"), "--format", "json"])

    assert status == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_skipped_step_in_text(capsys: pytest.CaptureFixture[str]) -> None:
    event = GOLDEN / "sim-replaced-without-prev-sim" / "event.json"

    status = main(["plan", str(event)])

    output = capsys.readouterr().out
    assert status == 0
    assert (
        "2. previous_sim: unlink SIM_Cards (upsert)\n"
        "   no call (skipped)\n"
        "   skipped: pb_data.prev_sim_info is absent\n"
    ) in output


def test_invalid_event_prints_details(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {
        "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
        "data": {"event_type": "SIM/Created"},
        "pb_data": {"account_info": {"id": "x"}, "sim_info": {"imsi": "1"}},
    }

    status = main(["plan", str(write_event(tmp_path, body))])

    assert status == 1
    assert json.loads(capsys.readouterr().out) == {
        "message": "Invalid event: pb_data.sim_info.i_sim_card: field required",
        "error": "Invalid event",
        "type": "VALIDATION_ERROR",
        "code": "invalid_event",
        "details": [
            {
                "loc": ["pb_data", "sim_info", "i_sim_card"],
                "msg": "field required",
                "type": "missing",
            }
        ],
    }


def test_event_type_without_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {
        "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
        "data": {"event_type": "Account/Blocked"},
    }

    status = main(["plan", str(write_event(tmp_path, body))])

    output = json.loads(capsys.readouterr().out)
    assert status == 1
    assert output["type"] == "VALIDATION_ERROR"
    assert output["code"] == "no_action_plan"


def test_ignored_event_type_with_other_mappings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(REPOSITORY / "mappings", mappings)
    plans = mappings / "action-plans.yaml"
    plans.write_text(
        plans.read_text(encoding="utf-8").replace("ignore: []", "ignore: [Account/Blocked]"),
        encoding="utf-8",
    )
    body = {
        "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
        "data": {"event_type": "Account/Blocked"},
        "created_at": None,
    }

    status = main(["plan", str(write_event(tmp_path, body)), "--mappings", str(mappings)])

    assert status == 0
    assert capsys.readouterr().out == (
        "event 3e84c79f-ab6f-4546-8e27-0b6ab866f1fb Account/Blocked (no event time)\n"
        "ignored: the mappings list this event type under `ignore`; no Zoho call\n"
    )


def test_invalid_mappings_print_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(REPOSITORY / "mappings", mappings)
    (mappings / "modules.yaml").unlink()

    status = main(["plan", str(PUBLISHED_EXAMPLE / "event.json"), "--mappings", str(mappings)])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    assert "unknown-module: module Contacts has no strategy" in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read {path}: No such file or directory", id="missing file"),
        pytest.param(
            b"{not json",
            "{path}: body is not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1 column 2",
            id="not JSON",
        ),
        pytest.param(
            b"[" * 100_000,
            "{path}: body is nested deeper than 128 levels",
            id="deeply nested brackets",
        ),
        pytest.param(
            b'{"a": ' + b"9" * 5000 + b"}",
            "{path}: body is not valid JSON: an integer has 5000 digits, more than the 4300 "
            "allowed",
            id="integer of 5000 digits",
        ),
        pytest.param(
            b'{"a": "\xff"}',
            "{path}: body is not UTF-8: invalid byte at position 7",
            id="not UTF-8",
        ),
        pytest.param(
            b" " * (1024 * 1024 + 1),
            "{path} is larger than the limit of 1048576 bytes for one event",
            id="file over 1 MiB",
        ),
    ],
)
def test_unreadable_event_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "event.json"
    if content is not None:
        path.write_bytes(content)

    status = main(["plan", str(path)])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err == f"zoho-connector plan: {message.format(path=path)}\n"
    assert captured.out == ""


def test_endless_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["plan", "/dev/zero"])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err == (
        "zoho-connector plan: /dev/zero is larger than the limit of 1048576 bytes for one event\n"
    )


def test_event_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    event = (PUBLISHED_EXAMPLE / "event.json").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(event)))

    status = main(["plan", "-"])

    assert status == 0
    assert capsys.readouterr().out == PUBLISHED_PLAN_TEXT


def test_several_files_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    first = PUBLISHED_EXAMPLE / "event.json"
    second = GOLDEN / "sim-replaced-without-prev-sim" / "event.json"

    status = main(["plan", str(first), str(second)])

    output = capsys.readouterr().out
    assert status == 0
    assert output.startswith(f"==> {first} <==\n{PUBLISHED_PLAN_TEXT}\n==> {second} <==\n")
    assert output.count("==> ") == 2


def test_several_files_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planned = PUBLISHED_EXAMPLE / "event.json"
    rejected = write_event(tmp_path, {"event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb"})
    expected_plan = json.loads(
        (PUBLISHED_EXAMPLE / "expected-plan.json").read_text(encoding="utf-8")
    )

    status = main(["plan", str(planned), str(rejected), "--format", "json"])

    output = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [entry["file"] for entry in output] == [str(planned), str(rejected)]
    assert output[0] == {"file": str(planned), "plan": expected_plan}
    assert output[1]["error"]["message"] == "Invalid event: data: field required"


def test_several_files_unreadable_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"

    status = main(["plan", str(PUBLISHED_EXAMPLE / "event.json"), str(missing)])

    captured = capsys.readouterr()
    assert status == 2
    assert f"cannot read {missing}" in captured.err
    assert captured.out.startswith(f"==> {PUBLISHED_EXAMPLE / 'event.json'} <==\n")


def test_unmapped_value_warning_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.loads((PUBLISHED_EXAMPLE / "event.json").read_text(encoding="utf-8"))
    body["pb_data"]["account_info"]["bill_status"] = "frozen"
    expected_plan = json.loads((PUBLISHED_EXAMPLE / "expected-plan.json").read_text("utf-8"))

    status = main(["plan", "--format", "json", str(write_event(tmp_path, body))])

    captured = capsys.readouterr()
    assert status == 0
    assert json.loads(captured.out)["steps"][0]["fields"][1]["value"] == "frozen"
    assert json.loads(captured.out)["steps"][1:] == expected_plan["steps"][1:]
    assert captured.err == (
        "zoho-connector plan: warning: value is not in the value_map and is written unchanged"
        "  field_mapping='contact' field='Bill_Status_PB' value='frozen'\n"
    )
