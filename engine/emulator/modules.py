"""Module and field definitions of the emulated org, and Zoho's per-value checks.

The modules come from `engine.mapping.modules`, the one reader of `crm-modules.yaml`, so the
emulator and `validate` agree on field types, default lengths and digit limits. Here they are
kept under the names of Zoho's field metadata (`api_name`, `data_type`), which the emulator
serves at `/settings/fields`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from engine.mapping import modules as definitions
from engine.mapping.findings import MappingInvalidError
from engine.mapping.loader import DEFAULT_MAPPINGS_DIR
from engine.mapping.types import DECIMAL_TYPES, MAX_DIGITS, WHOLE_NUMBER_TYPES

DEFAULT_MODULES_PATH = DEFAULT_MAPPINGS_DIR / definitions.MODULES_FILE_NAME

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# NOTE: Zoho's exact phone rule is unpublished. This accepts digits with an optional leading `+`
# and the separators people type (space, `-`, `.`, brackets), and rejects letters.
PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 ().\-]*$")
STRING_TYPES = frozenset({"text", "textarea", "email", "phone", "website", "picklist"})


@dataclass(frozen=True)
class FieldDefinition:
    api_name: str
    data_type: str
    length: int | None = None
    mandatory: bool = False
    unique: bool = False
    lookup_module: str | None = None
    pick_list_values: tuple[str, ...] = ()

    @classmethod
    def from_parsed(cls, field: definitions.FieldDefinition) -> FieldDefinition:
        return cls(
            api_name=field.name,
            data_type=field.type,
            length=field.length,
            mandatory=field.mandatory,
            unique=field.unique,
            lookup_module=field.lookup_module,
            pick_list_values=field.values,
        )

    def metadata(self) -> dict[str, Any]:
        """Return the field as Zoho's `/settings/fields` describes it (the subset used here)."""
        described: dict[str, Any] = {
            "api_name": self.api_name,
            "data_type": self.data_type,
            "length": self.length,
            "system_mandatory": self.mandatory,
            "unique": {"casesensitive": "true"} if self.unique else {},
        }
        if self.pick_list_values:
            described["pick_list_values"] = [
                {"display_value": value, "actual_value": value} for value in self.pick_list_values
            ]
        if self.lookup_module:
            described["lookup"] = {"module": {"api_name": self.lookup_module}}
        return described


@dataclass(frozen=True)
class ModuleDefinition:
    api_name: str
    fields: dict[str, FieldDefinition]

    @classmethod
    def from_parsed(cls, module: definitions.ModuleDefinition) -> ModuleDefinition:
        fields = {name: FieldDefinition.from_parsed(field) for name, field in module.fields.items()}
        return cls(api_name=module.name, fields=fields)

    @property
    def unique_fields(self) -> list[FieldDefinition]:
        return [field for field in self.fields.values() if field.unique]

    @property
    def mandatory_fields(self) -> list[FieldDefinition]:
        return [field for field in self.fields.values() if field.mandatory]


def load_modules(path: Path | None = None) -> dict[str, ModuleDefinition]:
    """Read module definitions in the format of `mappings/crm-modules.yaml`.

    Raises OSError when the file cannot be read and ValueError listing every problem in it.
    """
    source = path or DEFAULT_MODULES_PATH
    try:
        parsed = definitions.load_module_definitions(source)
    except MappingInvalidError as error:
        problems = "; ".join(finding.as_text() for finding in error.findings)
        raise ValueError(f"invalid module definitions: {problems}") from error
    return {name: ModuleDefinition.from_parsed(module) for name, module in parsed.items()}


def invalid_data(field: str, index: int, **details: Any) -> dict[str, Any]:
    return {
        "code": "INVALID_DATA",
        "details": {"api_name": field, "json_path": f"$.data[{index}].{field}", **details},
        "message": "invalid data",
        "status": "error",
    }


def check_value(field: FieldDefinition, value: Any, index: int) -> dict[str, Any] | None:
    """Return Zoho's error element when `value` does not fit `field`, else `None`.

    `None` (clearing the field) always fits here; mandatory fields are checked by the caller.
    Lookups are only checked for shape here; whether the id exists is the store's check.
    """
    if value is None:
        return None
    kind = field.data_type
    name = field.api_name

    if kind in STRING_TYPES:
        if not isinstance(value, str):
            return invalid_data(name, index, expected_data_type=kind)
        if field.length is not None and len(value) > field.length:
            return invalid_data(name, index, maximum_length=field.length)
        if kind == "email" and value and not EMAIL_PATTERN.match(value):
            return invalid_data(name, index, expected_data_type="email")
        if kind == "phone" and value and not PHONE_PATTERN.match(value):
            return invalid_data(name, index, expected_data_type="phone")
        # Unknown picklist values are accepted, as Zoho's REST API accepts them.
        return None

    if kind == "multiselectpicklist":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return invalid_data(name, index, expected_data_type="jsonarray")
        return None

    if kind == "boolean":
        return (
            None
            if isinstance(value, bool)
            else invalid_data(name, index, expected_data_type="boolean")
        )

    if kind in WHOLE_NUMBER_TYPES:
        digits = MAX_DIGITS[kind]
        # NOTE: Zoho's own SDKs send long integers as strings, so digit strings are accepted.
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return invalid_data(name, index, expected_data_type=kind)
        if len(str(abs(value))) > digits:
            return invalid_data(name, index, maximum_length=digits)
        return None

    if kind in DECIMAL_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return invalid_data(name, index, expected_data_type=kind)
        return None

    if kind == "date":
        if not isinstance(value, str) or not _parses(date.fromisoformat, value):
            return invalid_data(name, index, expected_data_type="date")
        return None

    if kind == "datetime":
        if not isinstance(value, str) or not _parses(datetime.fromisoformat, value):
            return invalid_data(name, index, expected_data_type="datetime")
        return None

    if kind == "lookup":
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            return invalid_data(name, index, expected_data_type="jsonobject")
        return None

    return None


def _parses(parser: Any, text: str) -> bool:
    try:
        parser(text)
    except ValueError:
        return False
    return True
