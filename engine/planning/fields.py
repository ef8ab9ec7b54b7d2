"""Turning the compiled fields of a field mapping into the `FieldValue`s of one step."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ErrorDetail
from engine.events.paths import is_empty, read_path
from engine.mapping.expressions import ExpressionEvaluationError
from engine.mapping.model import (
    CompiledField,
    CompiledFieldMapping,
    TooLong,
    ValueSource,
    WhenEmpty,
)
from engine.mapping.types import (
    ENUMERATION_TYPES,
    TEXT_TYPES,
    ValueConversionError,
    convert_value,
)
from engine.planning.plan import EventPath, FieldValue

logger = logging.getLogger(__name__)

# Longest unmapped value written to the warning log; longer values are cut to this length.
MAX_LOGGED_VALUE_LENGTH = 40


@dataclass
class UnmappedValueLog:
    """Logs each value missing from a value map once, at warning level.

    Only values bound for an enumeration field (picklist, multi-select picklist, boolean) are
    logged, once per (mapping, field, value): they are status words such as `open`. For any
    other field the value may be personal data, so one line per (mapping, field) reports that
    values were unmapped without showing them.
    """

    _seen: set[tuple[str, str, str | None]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, mapping: str, field_name: str, value: Any, zoho_type: str) -> None:
        logged_value = None
        if zoho_type in ENUMERATION_TYPES:
            logged_value = str(value)[:MAX_LOGGED_VALUE_LENGTH]
        key = (mapping, field_name, logged_value)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)

        if logged_value is None:
            logger.warning(
                "a value is not in the value_map and is written unchanged; it is not logged "
                "because the field is not an enumeration field",
                extra={"field_mapping": mapping, "field": field_name, "zoho_type": zoho_type},
            )
            return
        logger.warning(
            "value is not in the value_map and is written unchanged",
            extra={"field_mapping": mapping, "field": field_name, "value": logged_value},
        )


@dataclass(frozen=True)
class BoundInput:
    """The event and the object a step binds, with the path it was read from."""

    event: dict[str, Any]
    path: EventPath
    value: Any


def evaluate_mapping(
    mapping: CompiledFieldMapping,
    bound: BoundInput,
    unmapped: UnmappedValueLog,
    problems: list[ErrorDetail],
) -> list[FieldValue]:
    """Return the field values the mapping writes for this input; problems are appended."""
    values = []
    for compiled in mapping.fields:
        try:
            value = _evaluate_field(mapping.name, compiled, bound, unmapped, problems)
        except ExpressionEvaluationError as error:
            problems.append(expression_problem(error, bound.path, compiled.field.name))
            continue
        if value is not None:
            values.append(value)
    return values


def expression_problem(
    error: ExpressionEvaluationError, loc: EventPath, field_name: str | None = None
) -> ErrorDetail:
    """Return the detail for an expression that failed on the event's data."""
    about = f" for Zoho field {field_name}" if field_name else ""
    return ErrorDetail(loc=loc, msg=f"{error}{about}", type="value_error.expression")


def read_source(source: ValueSource, bound: BoundInput) -> tuple[Any, EventPath | None]:
    """Return the raw value of a source and the absolute event path it came from."""
    if source.expression is not None:
        return source.expression.evaluate(bound.value, bound.event), None
    if source.path is not None:
        path = source.path if source.absolute else (*bound.path, *source.path)
        return read_path(bound.event, path), path
    return source.constant, None


def _evaluate_field(
    mapping_name: str,
    compiled: CompiledField,
    bound: BoundInput,
    unmapped: UnmappedValueLog,
    problems: list[ErrorDetail],
) -> FieldValue | None:
    name = compiled.field.name
    if compiled.condition is not None and not compiled.condition.evaluate(bound.value, bound.event):
        return None

    source = compiled.source
    value, path = read_source(source, bound)
    on_create_only = False
    if is_empty(value) and compiled.default is not None:
        value, path = compiled.default, None
    if is_empty(value) and compiled.default_on_create is not None:
        source = compiled.default_on_create
        value, path = read_source(source, bound)
        on_create_only = not is_empty(value)

    if is_empty(value):
        empty_path = path or _source_path(compiled.source, bound)
        return _empty_field(compiled, empty_path, problem_path(source, bound), problems)

    if compiled.value_map is not None and isinstance(value, str | int | float | bool):
        key = _value_map_key(value)
        if key in compiled.value_map:
            value = compiled.value_map[key]
        else:
            unmapped.record(mapping_name, name, value, compiled.field.type)
        if is_empty(value):
            return _empty_field(compiled, path, problem_path(source, bound), problems)

    loc = path or problem_path(source, bound)
    try:
        converted = convert_value(value, compiled.type)
    except ValueConversionError as error:
        problems.append(
            ErrorDetail(loc=loc, msg=f"{error} for Zoho field {name}", type="type_error")
        )
        return None
    converted = _limit_length(compiled, converted, loc, problems, on_create_only=on_create_only)
    if converted is None:
        return None
    return FieldValue(field=name, value=converted, source=path, on_create_only=on_create_only)


def _value_map_key(value: str | int | float | bool) -> str:
    """Return the value as value map keys are written: JSON's true/false, numbers as digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _empty_field(
    compiled: CompiledField,
    path: EventPath | None,
    problem_loc: EventPath,
    problems: list[ErrorDetail],
) -> FieldValue | None:
    if compiled.when_empty is WhenEmpty.CLEAR:
        return FieldValue(field=compiled.field.name, value=None, source=path)
    if compiled.when_empty is WhenEmpty.FAIL:
        problems.append(
            ErrorDetail(
                loc=path or problem_loc,
                msg=f"field required: Zoho field {compiled.field.name} must not be empty",
                type="missing",
            )
        )
    return None


def _limit_length(
    compiled: CompiledField,
    value: Any,
    loc: EventPath,
    problems: list[ErrorDetail],
    *,
    on_create_only: bool,
) -> Any:
    if compiled.type not in TEXT_TYPES or compiled.max_length is None:
        return value
    if len(value) <= compiled.max_length:
        return value
    # A default_on_create value is a stand-in that the mapping generates, so it is cut to fit
    # rather than failing an event whose own field was only empty.
    if compiled.on_too_long is TooLong.TRUNCATE or on_create_only:
        return value[: compiled.max_length]
    problems.append(
        ErrorDetail(
            loc=loc,
            msg=f"is {len(value)} characters long, but Zoho field {compiled.field.name} allows "
            f"{compiled.max_length}",
            type="value_error.too_long",
        )
    )
    return None


def problem_path(source: ValueSource, bound: BoundInput) -> EventPath:
    """Return the event path to name in a problem about a value that has no path of its own.

    For an expression that is the first path it reads, else the step's input path.
    """
    if source.expression is not None:
        for name, path in source.expression.reads:
            return path if name == "event" else (*bound.path, *path)
    return bound.path


def _source_path(source: ValueSource, bound: BoundInput) -> EventPath | None:
    if source.path is None:
        return None
    return source.path if source.absolute else (*bound.path, *source.path)
