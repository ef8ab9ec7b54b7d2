"""Validation of an incoming event against the NSPS event JSON Schema.

Every problem is collected, not only the first, and each becomes an `ErrorDetail` whose `loc` is
the path into the event. Messages are built from the schema's rules and never quote the value
received, because values may be personal data and error bodies are stored in NSPS's event
history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from engine.errors import ErrorDetail, EventValidationError
from engine.events.paths import format_path

SCHEMA_FILE_NAME = "nsps-event.schema.json"
DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}

# jsonschema keyword -> ErrorDetail.type, in the FastAPI style that NSPS's examples show.
ERROR_TYPES = {
    "required": "missing",
    "type": "type_error",
    "minLength": "value_error.empty",
    "pattern": "value_error.pattern",
    "anyOf": "value_error.any_of",
    "enum": "value_error.enum",
}


class EventValidator:
    """Checks events against one NSPS event schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = Draft202012Validator(schema)

    def validate(self, body: Any) -> dict[str, Any]:
        """Return the event when it is valid, else raise EventValidationError with every problem."""
        if not isinstance(body, dict):
            raise EventValidationError(
                f"Invalid event: the body must be a JSON object, not {json_type_name(body)}",
                details=[ErrorDetail(loc=(), msg="must be an object", type="type_error")],
            )

        details = sorted(_details(self._validator.iter_errors(body)), key=_sort_key)
        if details:
            raise invalid_event_error(details)
        return body


def invalid_event_error(details: Sequence[ErrorDetail]) -> EventValidationError:
    """Build the error for an invalid event: its message names the first problems, and
    `details` lists them all."""
    shown = "; ".join(f"{format_path(detail.loc)}: {detail.msg}" for detail in details[:3])
    hidden = len(details) - 3
    more = f" (and {hidden} more)" if hidden > 0 else ""
    return EventValidationError(f"Invalid event: {shown}{more}", details=list(details))


def json_type_name(value: Any) -> str:
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _details(errors: Iterable[ValidationError]) -> Iterable[ErrorDetail]:
    """Keep one detail per location: the last one, which comes from the event type's stricter
    rules (`allOf`) rather than from the base schema that also allows null.

    A missing field has its own location (the object's path plus the field name), so two
    missing siblings stay two details.
    """
    by_loc: dict[tuple[str | int, ...], ErrorDetail] = {}
    for error in errors:
        for detail in _error_details(error):
            by_loc[detail.loc] = detail
    return by_loc.values()


def _error_details(error: ValidationError) -> list[ErrorDetail]:
    if error.validator != "required":
        return [_detail(error)]
    loc: tuple[str | int, ...] = tuple(error.absolute_path)
    return [
        ErrorDetail(loc=(*loc, name), msg="field required", type=ERROR_TYPES["required"])
        for name in _missing_properties(error)
    ]


def _detail(error: ValidationError) -> ErrorDetail:
    loc: tuple[str | int, ...] = tuple(error.absolute_path)
    keyword = str(error.validator)
    error_type = ERROR_TYPES.get(keyword, f"value_error.{keyword}")

    if keyword == "type":
        expected = error.validator_value
        expected_text = " or ".join(expected) if isinstance(expected, list) else str(expected)
        if error.instance is None:
            return ErrorDetail(
                loc=loc, msg=f"must not be null, expected {expected_text}", type="missing"
            )
        return ErrorDetail(
            loc=loc,
            msg=f"must be {expected_text}, not {json_type_name(error.instance)}",
            type=error_type,
        )
    if keyword == "pattern":
        description = error.schema.get("description", "")
        hint = " (a UUID)" if "UUID" in description else ""
        return ErrorDetail(loc=loc, msg=f"has an invalid format{hint}", type=error_type)

    message = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    return ErrorDetail(loc=loc, msg=message or _rule_message(error), type=error_type)


def _rule_message(error: ValidationError) -> str:
    """Return the message for a broken rule, built from the rule alone.

    jsonschema's own `error.message` quotes the value received ("'Olena' is too long"), and
    that value may be personal data, so it is never used.
    """
    if error.validator is None:
        return "is not allowed here"
    describe = RULE_MESSAGES.get(str(error.validator))
    if describe is None:
        return f"breaks the schema's {error.validator} rule"
    return describe(error.validator_value)


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _json_list(values: Any) -> str:
    return ", ".join(json.dumps(value, ensure_ascii=False) for value in values)


# jsonschema keyword -> message built from the keyword's value in the schema.
RULE_MESSAGES: dict[str, Callable[[Any], str]] = {
    "minLength": lambda limit: (
        "must not be empty" if limit == 1 else f"must be at least {_count(limit, 'character')} long"
    ),
    "maxLength": lambda limit: f"must be at most {_count(limit, 'character')} long",
    "minimum": lambda limit: f"must be at least {limit}",
    "maximum": lambda limit: f"must be at most {limit}",
    "exclusiveMinimum": lambda limit: f"must be greater than {limit}",
    "exclusiveMaximum": lambda limit: f"must be less than {limit}",
    "multipleOf": lambda factor: f"must be a multiple of {factor}",
    "enum": lambda values: f"must be one of: {_json_list(values)}",
    "const": lambda value: f"must be {json.dumps(value, ensure_ascii=False)}",
    "format": lambda name: f"must be a valid {name}",
    "minItems": lambda limit: f"must have at least {_count(limit, 'item')}",
    "maxItems": lambda limit: f"must have at most {_count(limit, 'item')}",
    "items": lambda _: "has more items than the schema allows",
    "uniqueItems": lambda _: "must not contain the same item twice",
    "minProperties": lambda limit: f"must have at least {_count(limit, 'field')}",
    "maxProperties": lambda limit: f"must have at most {_count(limit, 'field')}",
    "additionalProperties": lambda _: "has fields the schema does not allow",
    "unevaluatedProperties": lambda _: "has fields the schema does not allow",
    "propertyNames": lambda _: "has a field name the schema does not allow",
    "dependentRequired": lambda _: "lacks a field that another field requires",
    "contains": lambda _: "has no item of the required form",
    "anyOf": lambda _: "does not match any of the allowed forms",
    "oneOf": lambda _: "must match exactly one of the allowed forms",
    "not": lambda _: "matches a form the schema does not allow",
}


def _missing_properties(error: ValidationError) -> list[str]:
    """Return every name of a `required` list that the object lacks.

    jsonschema reports each missing name as its own error, but only in the message text, so
    the names are read from the schema and the object instead.
    """
    if not isinstance(error.validator_value, list) or not isinstance(error.instance, dict):
        return []
    return [str(name) for name in error.validator_value if name not in error.instance]


def _sort_key(detail: ErrorDetail) -> tuple[str, str]:
    return (format_path(detail.loc), detail.msg)
