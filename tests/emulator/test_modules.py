"""Module definitions: the emulator reads `crm-modules.yaml` through the mapping's reader, so it
and the planner agree on types, default lengths and digit limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.emulator.modules import DEFAULT_MODULES_PATH, check_value, load_modules
from engine.errors import EventValidationError
from engine.mapping.modules import load_module_definitions
from engine.planning.planner import Planner

MODULES = """\
modules:
  Contacts:
    fields:
      I_PB: {type: text, unique: true}
      Last_Name: {type: text, length: 80, mandatory: true}
      Note: {type: text}
      Score: {type: decimal}
      Count: {type: integer}
"""

MAPPINGS = """\
modules:
  Contacts:
    strategy: upsert
    key_field: I_PB
    duplicate_check_fields: [I_PB]
field_mappings:
  contact:
    module: Contacts
    input: $.pb_data.account_info
    fields:
      - {field: Note, source: firstname}
      - {field: Score, source: i_account}
      - {field: Count, source: i_account}
action_plans:
  Account/Updated:
    steps:
      - id: contact
        action: find_or_create
        match: {source: id}
        write: contact
"""


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "crm-modules.yaml").write_text(MODULES, encoding="utf-8")
    (directory / "test.yaml").write_text(MAPPINGS, encoding="utf-8")
    return directory


def account_event(**account: Any) -> dict[str, Any]:
    return {
        "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
        "data": {"event_type": "Account/Updated"},
        "pb_data": {"account_info": {"id": "79123456789@msisdn", **account}},
    }


def test_shipped_modules_match_mapping_reader() -> None:
    parsed = load_module_definitions(DEFAULT_MODULES_PATH)

    emulated = load_modules()

    assert sorted(emulated) == sorted(parsed)
    for name, module in parsed.items():
        assert [
            (field.api_name, field.data_type, field.length, field.mandatory, field.unique)
            for field in emulated[name].fields.values()
        ] == [
            (field.name, field.type, field.length, field.mandatory, field.unique)
            for field in module.fields.values()
        ]


def test_default_text_length_on_both_sides(mappings_dir: Path) -> None:
    emulated = load_modules(mappings_dir / "crm-modules.yaml")["Contacts"].fields["Note"]
    planner = Planner.from_directory(mappings_dir)

    with pytest.raises(EventValidationError) as caught:
        planner.plan(account_event(firstname="x" * 256))

    assert emulated.length == 255
    assert check_value(emulated, "x" * 255, 0) is None
    assert check_value(emulated, "x" * 256, 0) is not None
    assert [detail.msg for detail in caught.value.details] == [
        "is 256 characters long, but Zoho field Note allows 255"
    ]


def test_decimal_field_on_both_sides(mappings_dir: Path) -> None:
    emulated = load_modules(mappings_dir / "crm-modules.yaml")["Contacts"].fields["Score"]
    planner = Planner.from_directory(mappings_dir)
    planned = planner.plan(account_event(i_account=7)).steps[0]

    fields = {value.field: value.value for value in planned.fields}

    assert fields["Score"] == 7
    assert check_value(emulated, 7, 0) is None
    assert check_value(emulated, "7", 0) is not None


def test_integer_digit_limit_on_both_sides(mappings_dir: Path) -> None:
    emulated = load_modules(mappings_dir / "crm-modules.yaml")["Contacts"].fields["Count"]
    planner = Planner.from_directory(mappings_dir)

    with pytest.raises(EventValidationError) as caught:
        planner.plan(account_event(i_account=1_234_567_890))

    assert check_value(emulated, 123_456_789, 0) is None
    assert check_value(emulated, 1_234_567_890, 0) is not None
    assert [detail.loc for detail in caught.value.details] == [
        ("pb_data", "account_info", "i_account")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "modules:\n  Contacts:\n    fields:\n      Note: {type: txt}\n",
            "invalid module definitions: {file}:4:7: schema: field Note needs a `type:` that is "
            "one of: ",
            id="unknown field type",
        ),
        pytest.param(
            "modules:\n  Contacts:\n    fields:\n      Note: {type: text, length: big}\n",
            "invalid module definitions: {file}:4:34: schema: field Note needs a `length:` "
            "that is a whole number of at least 1",
            id="length that is not a number",
        ),
        pytest.param(
            "modules:\n  SIM_Cards:\n    fields:\n      Owner: {type: lookup}\n",
            "invalid module definitions: {file}:4:7: schema: lookup field Owner needs a "
            "`module:` naming the module it points to",
            id="lookup without a module",
        ),
    ],
)
def test_invalid_definitions_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "crm-modules.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ValueError, match="invalid module definitions") as caught:
        load_modules(path)

    assert str(caught.value).startswith(message.format(file=path))
