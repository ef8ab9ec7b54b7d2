"""Events posted to the real Falcon app, built from a copy of the shipped mappings.

Zoho is the local emulator. Each test changes the mappings or the event and checks the response
that NSPS would get.
"""

from __future__ import annotations

import copy
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from engine.config import Settings
from engine.emulator import EmulatorServer
from engine.service.wiring import build_service

REPOSITORY = Path(__file__).resolve().parents[2]
API_TOKEN = "planning-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}

EditMappings = Callable[[Path], None]
PostEvent = Callable[[dict[str, Any]], falcon.testing.Result]


def load_example(name: str) -> dict[str, Any]:
    """Return a docs example event with a fresh event id."""
    event: dict[str, Any] = json.loads((REPOSITORY / "docs" / "examples" / name).read_text())
    event = copy.deepcopy(event)
    event["event_id"] = str(uuid.uuid4())
    return event


def replace_in(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` in a mapping file; fail when `old` is not there."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def start_service(
    emulator: EmulatorServer, tmp_path: Path
) -> Iterator[Callable[[EditMappings], PostEvent]]:
    """Return a function that edits a mappings copy, builds the service and returns `post`."""
    services = []

    def start(edit: EditMappings) -> PostEvent:
        mappings = tmp_path / "mappings"
        shutil.copytree(REPOSITORY / "mappings", mappings)
        edit(mappings)
        settings = Settings(
            api_token=API_TOKEN,
            zoho_accounts_url=emulator.url,
            zoho_api_domain=emulator.url,
            zoho_client_id=emulator.state.client_id,
            zoho_client_secret=emulator.state.client_secret,
            zoho_refresh_token=emulator.state.refresh_token,
            zoho_token_file=tmp_path / "zoho-token.json",
            journal_path=tmp_path / "journal.sqlite3",
            lock_dir=tmp_path / "locks",
            mappings_dir=mappings,
        )
        service = build_service(settings)
        services.append(service)
        client = falcon.testing.TestClient(service.app)

        def post(event: dict[str, Any]) -> falcon.testing.Result:
            return client.simulate_post("/process-event", json=event, headers=HEADERS)

        return post

    yield start
    for service in services:
        service.close()


@pytest.mark.parametrize(
    ("expression", "status", "body"),
    [
        pytest.param(
            "input.msisdn * 100000",
            500,
            {
                "message": "expression 'input.msisdn * 100000' in the mappings failed: "
                "SecurityError: repeating a value of size 11 100000 times gives a size of 1100000, "
                "over the limit of 100000; fix the expression and run zoho-connector "
                "validate",
                "error": "Mapping failed",
                "type": "SERVICE_ERROR",
                "code": "mapping_failed",
            },
            id="sandbox stops a huge value",
        ),
        pytest.param(
            "input.msisdn.replace('', input.msisdn * 9000)",
            500,
            {
                "message": "expression \"input.msisdn.replace('', input.msisdn * 9000)\" in the "
                "mappings failed: SecurityError: replace() would give 1188011 characters, over "
                "the limit of 100000; fix the expression and run zoho-connector validate",
                "error": "Mapping failed",
                "type": "SERVICE_ERROR",
                "code": "mapping_failed",
            },
            id="sandbox stops a huge replace",
        ),
        pytest.param(
            "input.msisdn + 1",
            422,
            {
                "message": "Invalid event: pb_data.sim_info: expression 'input.msisdn + 1' "
                "failed: TypeError for Zoho field Name",
                "error": "Invalid event",
                "type": "VALIDATION_ERROR",
                "code": "invalid_event",
                "details": [
                    {
                        "loc": ["pb_data", "sim_info"],
                        "msg": "expression 'input.msisdn + 1' failed: TypeError for Zoho "
                        "field Name",
                        "type": "value_error.expression",
                    }
                ],
            },
            id="event value of the wrong type",
        ),
    ],
)
def test_expression_failure_status(
    start_service: Callable[[EditMappings], PostEvent],
    expression: str,
    status: int,
    body: dict[str, Any],
) -> None:
    post = start_service(
        lambda mappings: replace_in(
            mappings / "sim-cards.yaml",
            "expression: input.msisdn or input.iccid",
            f"expression: {expression}",
        )
    )

    result = post(load_example("sim-updated.json"))

    assert result.status_code == status
    assert result.json == body


def test_far_future_time_does_not_block_later_events(
    start_service: Callable[[EditMappings], PostEvent], emulator: EmulatorServer
) -> None:
    post = start_service(lambda mappings: None)
    future = load_example("sim-updated.json")
    future["created_at"] = "9999-01-01T00:00:00+00:00"
    later = load_example("sim-updated.json")
    later["created_at"] = "2026-01-01T00:00:00+00:00"
    later["pb_data"]["sim_info"]["status"] = "disposed"

    first = post(future)
    second = post(later)

    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json["outcome"] == "processed"
    assert [record["Status"] for record in emulator.records("SIM_Cards")] == ["Disposed"]


@pytest.mark.parametrize(
    "created_at",
    [
        pytest.param("0001-01-01T00:00:00+01:00", id="before year 1 in UTC"),
        pytest.param("9999-12-31T23:59:59-01:00", id="after year 9999 in UTC"),
    ],
)
def test_time_outside_datetime_range_is_processed(
    start_service: Callable[[EditMappings], PostEvent], created_at: str
) -> None:
    post = start_service(lambda mappings: None)
    event = load_example("sim-updated.json")
    event["created_at"] = created_at

    result = post(event)

    assert result.status_code == 202


def test_long_create_default_does_not_fail_update(
    start_service: Callable[[EditMappings], PostEvent], emulator: EmulatorServer
) -> None:
    post = start_service(lambda mappings: None)
    account_id = "a" * 107
    first = load_example("sim-updated.json")
    first["pb_data"]["account_info"]["id"] = account_id
    second = load_example("sim-updated.json")
    second["pb_data"]["account_info"]["id"] = account_id
    second["pb_data"]["account_info"]["lastname"] = None

    created = post(first)
    updated = post(second)

    assert created.status_code == 202
    assert updated.status_code == 202
    assert [record["Last_Name"] for record in emulator.records("Contacts")] == ["Koval"]


def test_long_create_default_is_truncated(
    start_service: Callable[[EditMappings], PostEvent], emulator: EmulatorServer
) -> None:
    post = start_service(lambda mappings: None)
    event = load_example("sim-updated.json")
    event["pb_data"]["account_info"]["id"] = "a" * 107
    event["pb_data"]["account_info"]["lastname"] = None

    result = post(event)

    assert result.status_code == 202
    assert [record["Last_Name"] for record in emulator.records("Contacts")] == ["a" * 80]


@pytest.mark.parametrize(
    ("change", "details"),
    [
        pytest.param(
            ("sim_info", "i_sim_card", 10**18),
            [
                {
                    "loc": ["pb_data", "sim_info", "i_sim_card"],
                    "msg": "has more than the 18 digits Zoho stores for Zoho field I_SIM_Card",
                    "type": "type_error",
                }
            ],
            id="key field too large is listed once",
        ),
        pytest.param(
            ("sim_info", "i_sim_card", 0),
            [
                {
                    "loc": ["pb_data", "sim_info", "i_sim_card"],
                    "msg": "must be at least 1",
                    "type": "value_error.minimum",
                }
            ],
            id="zero sim card id",
        ),
        pytest.param(
            ("sim_info", "i_sim_card", -5),
            [
                {
                    "loc": ["pb_data", "sim_info", "i_sim_card"],
                    "msg": "must be at least 1",
                    "type": "value_error.minimum",
                }
            ],
            id="negative sim card id",
        ),
        pytest.param(
            ("account_info", "id", "   "),
            [
                {
                    "loc": ["pb_data", "account_info", "id"],
                    "msg": "field required: step contact finds its Contacts record by I_PB",
                    "type": "missing",
                }
            ],
            id="whitespace account id",
        ),
        pytest.param(
            ("sim_info", "iccid", "8" * 130),
            [
                {
                    "loc": ["pb_data", "sim_info", "msisdn"],
                    "msg": "is 130 characters long, but Zoho field Name allows 120",
                    "type": "value_error.too_long",
                }
            ],
            id="expression value names the path it reads",
        ),
    ],
)
def test_invalid_value_details(
    start_service: Callable[[EditMappings], PostEvent],
    change: tuple[str, str, Any],
    details: list[dict[str, Any]],
) -> None:
    post = start_service(lambda mappings: None)
    event = load_example("sim-updated.json")
    section, name, value = change
    event["pb_data"][section][name] = value
    if name == "iccid":
        event["pb_data"]["sim_info"]["msisdn"] = None

    result = post(event)

    assert result.status_code == 422
    assert result.json["details"] == details


def test_huge_integer_for_number_field(
    start_service: Callable[[EditMappings], PostEvent],
) -> None:
    post = start_service(
        lambda mappings: replace_in(
            mappings / "sim-cards.yaml",
            "      - field: I_SIM_Card\n        source: i_sim_card\n",
            '      - field: I_SIM_Card\n        expression: "input.i_sim_card * 10 ** 5000"\n',
        )
    )

    result = post(load_example("sim-updated.json"))

    assert result.status_code == 422
    assert result.json["details"] == [
        {
            "loc": ["pb_data", "sim_info", "i_sim_card"],
            "msg": "has more than the 18 digits Zoho stores for Zoho field I_SIM_Card",
            "type": "type_error",
        }
    ]
