"""The planner: from one event to the `Plan` of Zoho operations, without network access."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine.errors import ErrorDetail, NoActionPlanError
from engine.events.paths import format_path, is_empty, read_path
from engine.events.times import DEFAULT_MAX_FUTURE_SKEW, Clock, read_event_time
from engine.events.validator import EventValidator, invalid_event_error
from engine.mapping.expressions import ExpressionEvaluationError
from engine.mapping.loader import load_mappings
from engine.mapping.model import CompiledMappings, CompiledStep, WhenInputAbsent
from engine.mapping.types import ValueConversionError, convert_value
from engine.planning.fields import (
    BoundInput,
    UnmappedValueLog,
    evaluate_mapping,
    expression_problem,
    read_source,
)
from engine.planning.plan import (
    FieldValue,
    LookupLink,
    Plan,
    RecordKey,
    RecordMatch,
    Step,
    Strategy,
)


class Planner:
    """Validator and planner of events for one compiled mappings directory."""

    def __init__(
        self,
        mappings: CompiledMappings,
        validator: EventValidator,
        *,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
        clock: Clock | None = None,
    ) -> None:
        """`max_future_skew` and `clock` decide when an event time is too far in the future
        to be used (see `read_event_time`)."""
        self.mappings = mappings
        self.validator = validator
        self.max_future_skew = max_future_skew
        self._clock = clock
        self._unmapped = UnmappedValueLog()

    @classmethod
    def from_directory(
        cls,
        mappings_dir: Path | None = None,
        schemas_dir: Path | None = None,
        *,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
        clock: Clock | None = None,
    ) -> Planner:
        """Load and check the mappings; defaults are the repository's `mappings/` and `schemas/`.

        Raises MappingInvalidError with every finding when the files have problems.
        """
        loaded = load_mappings(mappings_dir, schemas_dir)
        return cls(
            loaded.mappings,
            EventValidator(loaded.event_schema),
            max_future_skew=max_future_skew,
            clock=clock,
        )

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every event type the mappings plan or ignore, sorted."""
        return tuple(sorted({*self.mappings.action_plans, *self.mappings.ignored}))

    def plan(self, body: Any) -> Plan:
        """Return the plan for one event.

        Raises EventValidationError when the event breaks the schema or a value cannot be
        written to its Zoho field, and NoActionPlanError when the mappings neither plan nor
        ignore the event type.
        """
        event = self.validator.validate(body)
        event_id = event["event_id"]
        event_type = event["data"]["event_type"]
        event_time = read_event_time(event, max_future_skew=self.max_future_skew, clock=self._clock)

        if event_type in self.mappings.ignored:
            return Plan(event_id, event_type, steps=(), event_time=event_time, ignored=True)
        action_plan = self.mappings.action_plans.get(event_type)
        if action_plan is None:
            raise NoActionPlanError(self._no_plan_message(event_type))

        problems: list[ErrorDetail] = []
        steps: list[Step] = []
        for compiled in action_plan.steps:
            steps.append(self._plan_step(compiled, event, steps, problems))
        if problems:
            # A key field written by the mapping and used to match fails twice the same way.
            raise invalid_event_error(list(dict.fromkeys(problems)))

        return Plan(
            event_id=event_id,
            event_type=event_type,
            steps=tuple(steps),
            event_time=event_time,
            record_keys=_record_keys(steps),
        )

    def _plan_step(
        self,
        compiled: CompiledStep,
        event: dict[str, Any],
        earlier: list[Step],
        problems: list[ErrorDetail],
    ) -> Step:
        input_value = read_path(event, compiled.input)
        bound = BoundInput(event, compiled.input, input_value)

        try:
            skip_reason = self._skip_reason(compiled, bound, problems)
            match = None if skip_reason else self._match(compiled, bound, problems)
        except ExpressionEvaluationError as error:
            problems.append(expression_problem(error, compiled.input))
            skip_reason = "an expression failed"
        if skip_reason is not None:
            return self._skipped_step(compiled, skip_reason)

        fields: list[FieldValue] = []
        if compiled.mapping is not None:
            fields = evaluate_mapping(compiled.mapping, bound, self._unmapped, problems)
        if match is not None and compiled.module.strategy is Strategy.UPSERT:
            fields = _with_key_field(fields, match)

        return Step(
            id=compiled.id,
            action=compiled.action,
            module=compiled.module.module.name,
            strategy=compiled.module.strategy,
            match=match,
            duplicate_check_fields=compiled.module.duplicate_check_fields,
            fields=tuple(fields),
            links=_links(compiled, earlier),
            when_absent=compiled.when_absent,
        )

    def _skip_reason(
        self, compiled: CompiledStep, bound: BoundInput, problems: list[ErrorDetail]
    ) -> str | None:
        if is_empty(bound.value) or (compiled.input and not isinstance(bound.value, dict)):
            where = format_path(compiled.input)
            if compiled.when_input_absent is WhenInputAbsent.SKIP:
                return f"{where} is absent"
            problems.append(
                ErrorDetail(
                    loc=compiled.input, msg=f"field required by step {compiled.id}", type="missing"
                )
            )
            return f"{where} is absent"
        if compiled.condition is not None and not compiled.condition.evaluate(
            bound.value, bound.event
        ):
            return f"condition is false: {compiled.condition.text}"
        return None

    def _skipped_step(self, compiled: CompiledStep, reason: str) -> Step:
        return Step(
            id=compiled.id,
            action=compiled.action,
            module=compiled.module.module.name,
            strategy=compiled.module.strategy,
            match=None,
            duplicate_check_fields=compiled.module.duplicate_check_fields,
            when_absent=compiled.when_absent,
            skip_reason=reason,
        )

    def _match(
        self, compiled: CompiledStep, bound: BoundInput, problems: list[ErrorDetail]
    ) -> RecordMatch | None:
        if compiled.match_source is None or compiled.match_field is None:
            return None
        value, path = read_source(compiled.match_source, bound)
        field = compiled.match_field
        module = compiled.module.module.name
        if is_empty(value):
            problems.append(
                ErrorDetail(
                    loc=path or compiled.input,
                    msg=f"field required: step {compiled.id} finds its {module} record by "
                    f"{field.name}",
                    type="missing",
                )
            )
            return None
        try:
            converted = convert_value(value, field.type)
        except ValueConversionError as error:
            problems.append(
                ErrorDetail(
                    loc=path or compiled.input,
                    msg=f"{error} for Zoho field {field.name}",
                    type="type_error",
                )
            )
            return None
        return RecordMatch(field=field.name, value=converted, source=path)

    def _no_plan_message(self, event_type: str) -> str:
        known = list(self.event_types)
        close = difflib.get_close_matches(event_type, known, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return (
            f"No action plan for event type {event_type!r}{hint}. The mappings plan or ignore: "
            f"{', '.join(known) or 'nothing'}."
        )


def _with_key_field(fields: list[FieldValue], match: RecordMatch) -> list[FieldValue]:
    """Add the key field when the mapping does not write it, because upsert matches on it."""
    if any(value.field == match.field and not value.on_create_only for value in fields):
        return fields
    others = [value for value in fields if value.field != match.field]
    return [*others, FieldValue(field=match.field, value=match.value, source=match.source)]


def _links(compiled: CompiledStep, earlier: list[Step]) -> tuple[LookupLink, ...]:
    """Return the step's lookups, leaving out those that name a step the planner skipped."""
    skipped = {step.id for step in earlier if step.skip_reason is not None}
    return tuple(
        LookupLink(field=lookup.field, step_id=lookup.step_id)
        for lookup in compiled.lookups
        if lookup.step_id not in skipped
    )


def _record_keys(steps: Iterable[Step]) -> tuple[RecordKey, ...]:
    keys: list[RecordKey] = []
    for step in steps:
        if step.match is None or step.skip_reason is not None:
            continue
        key = RecordKey(step.module, step.match.field, step.match.value)
        if key not in keys:
            keys.append(key)
    return tuple(keys)
