"""Module and field definitions of the emulated org, and Zoho's per-value checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MODULES_PATH = Path(__file__).resolve().parents[2] / "mappings" / "crm-modules.yaml"

# Default lengths of Zoho field types when the definition gives none.
DEFAULT_LENGTHS = {"text": 255, "textarea": 32000, "email": 100, "phone": 30, "website": 255}

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# NOTE: Zoho's exact phone rule is unpublished. This accepts digits with an optional leading `+`
# and the separators people type (space, `-`, `.`, brackets), and rejects letters.
PHONE_PATTERN = re.compile(r"^\+?[0-9][0-9 ().\-]*$")
INTEGER_DIGITS = 9
BIGINT_DIGITS = 18


@dataclass(frozen=True)
class FieldDefinition:
    api_name: str
    data_type: str
    length: int | None = None
    mandatory: bool = False
    unique: bool = False
    lookup_module: str | None = None
    pick_list_values: tuple[str, ...] = ()

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

    @property
    def unique_fields(self) -> list[FieldDefinition]:
        return [field for field in self.fields.values() if field.unique]

    @property
    def mandatory_fields(self) -> list[FieldDefinition]:
        return [field for field in self.fields.values() if field.mandatory]


def load_modules(path: Path | None = None) -> dict[str, ModuleDefinition]:
    """Read module definitions in the format of `mappings/crm-modules.yaml`."""
    source = path or DEFAULT_MODULES_PATH
    document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    modules_section = document.get("modules") if isinstance(document, dict) else None
    if not isinstance(modules_section, dict):
        raise ValueError(f"{source}: expected a top-level `modules` mapping")

    modules: dict[str, ModuleDefinition] = {}
    for module_name, module_body in modules_section.items():
        fields_section = (module_body or {}).get("fields") or {}
        if not isinstance(fields_section, dict):
            raise ValueError(f"{source}: modules.{module_name}.fields must be a mapping")
        fields: dict[str, FieldDefinition] = {}
        for field_name, spec in fields_section.items():
            if not isinstance(spec, dict) or "type" not in spec:
                location = f"modules.{module_name}.fields.{field_name}"
                raise ValueError(f"{source}: {location} needs a type")
            data_type = str(spec["type"])
            fields[field_name] = FieldDefinition(
                api_name=field_name,
                data_type=data_type,
                length=spec.get("length", DEFAULT_LENGTHS.get(data_type)),
                mandatory=bool(spec.get("mandatory", False)),
                unique=bool(spec.get("unique", False)),
                lookup_module=spec.get("module"),
                pick_list_values=tuple(str(value) for value in spec.get("values", ())),
            )
        modules[str(module_name)] = ModuleDefinition(api_name=str(module_name), fields=fields)
    return modules


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

    if kind in ("text", "textarea", "email", "phone", "website", "picklist"):
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
        return None if isinstance(value, bool) else invalid_data(
            name, index, expected_data_type="boolean")

    if kind in ("integer", "bigint"):
        digits = INTEGER_DIGITS if kind == "integer" else BIGINT_DIGITS
        # NOTE: Zoho's own SDKs send long integers as strings, so digit strings are accepted.
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return invalid_data(name, index, expected_data_type=kind)
        if len(str(abs(value))) > digits:
            return invalid_data(name, index, maximum_length=digits)
        return None

    if kind in ("double", "decimal", "currency", "percent"):
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
