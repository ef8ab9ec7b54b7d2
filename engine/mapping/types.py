"""Zoho field types and the conversion of event values into Zoho's JSON shapes.

Picklists are written as their display string, booleans as true/false, whole numbers as JSON
numbers (Python ints keep every digit, so 2^53 - 1 stays exact), and text as strings.
"""

from __future__ import annotations

from typing import Any

TEXT_TYPES = frozenset(
    {"text", "textarea", "email", "phone", "website", "picklist", "date", "datetime"}
)
WHOLE_NUMBER_TYPES = frozenset({"integer", "bigint"})
# Types whose values come from a fixed list, so an event value for them is a status word, not
# personal data.
ENUMERATION_TYPES = frozenset({"picklist", "multiselectpicklist", "boolean"})
# NOTE: whether Zoho's field metadata names a Decimal field `double` or `decimal` is
# unconfirmed, so both are read as the same type.
DECIMAL_TYPES = frozenset({"double", "decimal", "currency", "percent"})
ZOHO_FIELD_TYPES = (
    TEXT_TYPES
    | WHOLE_NUMBER_TYPES
    | DECIMAL_TYPES
    | {
        "boolean",
        "multiselectpicklist",
    }
)

# Largest values Zoho stores: Integer fields hold up to 9 digits, Long Integer up to 18.
MAX_DIGITS = {"integer": 9, "bigint": 18}

# JSON Schema types (of the event schema) that each Zoho type can be converted from.
ACCEPTED_SOURCE_TYPES: dict[str, frozenset[str]] = {
    **{name: frozenset({"string", "integer", "number"}) for name in TEXT_TYPES},
    "boolean": frozenset({"boolean"}),
    "integer": frozenset({"integer"}),
    "bigint": frozenset({"integer"}),
    "double": frozenset({"integer", "number"}),
    "decimal": frozenset({"integer", "number"}),
    "currency": frozenset({"integer", "number"}),
    "percent": frozenset({"integer", "number"}),
    "multiselectpicklist": frozenset({"array", "string"}),
}

TRUE_WORDS = frozenset({"true", "y", "yes", "1"})
FALSE_WORDS = frozenset({"false", "n", "no", "0"})


class ValueConversionError(ValueError):
    """A value cannot be converted to the Zoho field type; the message gives the reason."""


def is_compatible(declared: str, zoho_type: str) -> bool:
    """Return whether a mapping's declared type may be written to a Zoho field of `zoho_type`."""
    if declared == zoho_type:
        return True
    if declared in TEXT_TYPES and zoho_type in TEXT_TYPES:
        return True
    if declared in WHOLE_NUMBER_TYPES:
        return zoho_type in WHOLE_NUMBER_TYPES | DECIMAL_TYPES
    return declared in DECIMAL_TYPES and zoho_type in DECIMAL_TYPES


def convert_value(value: Any, zoho_type: str) -> Any:
    """Convert one non-empty value to the JSON shape Zoho expects for `zoho_type`."""
    if zoho_type in TEXT_TYPES:
        return _to_text(value)
    if zoho_type == "boolean":
        return _to_boolean(value)
    if zoho_type in WHOLE_NUMBER_TYPES:
        return _to_whole_number(value, MAX_DIGITS[zoho_type])
    if zoho_type in DECIMAL_TYPES:
        return _to_decimal(value)
    if zoho_type == "multiselectpicklist":
        items = value if isinstance(value, list) else [value]
        return [_to_text(item) for item in items]
    raise ValueConversionError(f"fields of type {zoho_type} cannot be written from the event")


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueConversionError(f"must be text, not {_json_type(value)}")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
        return True
    if isinstance(value, str) and value.strip().lower() in FALSE_WORDS:
        return False
    raise ValueConversionError(f"must be a boolean (true/false), not {_json_type(value)}")


def _to_whole_number(value: Any, max_digits: int) -> int:
    if isinstance(value, bool):
        raise ValueConversionError("must be a whole number, not boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    too_many_digits = ValueConversionError(f"has more than the {max_digits} digits Zoho stores")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        # Checked before int(), which rejects more than 4300 digits with advice meant for
        # Python programmers.
        if len(value.strip().lstrip("-").lstrip("0")) > max_digits:
            raise too_many_digits
        value = int(value.strip())
    if not isinstance(value, int):
        raise ValueConversionError(f"must be a whole number, not {_json_type(value)}")
    if abs(value) >= 10**max_digits:
        raise too_many_digits
    return value


def _to_decimal(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueConversionError("must be a number, not boolean")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueConversionError("must be a number, not text") from None
    raise ValueConversionError(f"must be a number, not {_json_type(value)}")


def _json_type(value: Any) -> str:
    from engine.events.validator import json_type_name

    return json_type_name(value)
