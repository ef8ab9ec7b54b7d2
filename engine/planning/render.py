"""Rendering a plan for people and for tools: the `plan` command's text and JSON output.

The Zoho calls shown per step follow `step_route`, the decision the runner makes. The first
line is the normal path; the alternatives describe in words when other calls happen. The planner
itself calls nothing.
"""

from __future__ import annotations

import json
from typing import Any

from engine.events.paths import format_path
from engine.planning.plan import Action, Plan, Step, Strategy, WhenAbsent
from engine.planning.routes import Route, absent_record_behaviour, step_route, writes_found_record
from engine.zoho.criteria import equals_criteria
from engine.zoho.settings import ZohoSettings

API_PREFIX = f"/crm/{ZohoSettings.api_version}"


def describe_operation(step: Step) -> str:
    """Return the Zoho calls of a step on its normal path, e.g. `POST /crm/v8/Contacts/upsert ...`.

    The normal path assumes that the journal stores no record id for the step and that Zoho
    accepts the first write. `describe_alternatives` describes what happens otherwise.
    """
    route = step_route(step)
    if route is Route.NONE:
        return "no call (skipped)"
    if route is Route.INSERT:
        return f"POST {API_PREFIX}/{step.module}"
    if route is Route.UPSERT:
        return _upsert_call(step)
    if step.match is None:
        return "no call (no record to match)"

    criteria = equals_criteria(step.match.field, step.match.value)
    search = f"GET {API_PREFIX}/{step.module}/search?criteria={criteria} (exact re-check)"
    absent = _absent_record_calls(step)
    if step.action is Action.FIND:
        return f"{search}; absent: {absent}"
    found = "no write"
    if writes_found_record(step):
        found = (
            f"PUT {API_PREFIX}/{step.module} with the record id, unless the record already "
            "has the values"
        )
    return f"{search}; found: {found}; absent: {absent}"


def describe_alternatives(step: Step) -> list[str]:
    """Return, in words, the Zoho calls a step makes when it leaves its normal path."""
    route = step_route(step)
    module = step.module
    creates = absent_record_behaviour(step) is WhenAbsent.CREATE
    alternatives: list[str] = []

    if route is Route.LOOKUP:
        alternatives.append(
            f"when the journal stores the record's id: GET {API_PREFIX}/{module}/{{id}} first, "
            "and the search only if that record is gone or its key changed"
        )
    if route is Route.LOOKUP and creates and step.strategy is Strategy.SEARCH and step.match:
        alternatives.append(
            f"when the insert fails with DUPLICATE_DATA on {step.match.field}, because the "
            f"search missed a new record: PUT {API_PREFIX}/{module} updates that record"
        )

    upserts = route is Route.UPSERT or (
        route is Route.LOOKUP and creates and step.strategy is Strategy.UPSERT
    )
    create_only = ", ".join(value.field for value in step.fields if value.on_create_only)
    if upserts and create_only:
        alternatives.append(
            f"when Zoho returns MANDATORY_NOT_FOUND for {create_only}, which is written on "
            f"create only: the upsert is sent again with {create_only}"
        )
        alternatives.append(
            f"when the upsert inserts the record: PUT {API_PREFIX}/{module} writes "
            f"{create_only} to it by id"
        )
    return alternatives


def _upsert_call(step: Step) -> str:
    fields = ",".join(step.duplicate_check_fields)
    return f"POST {API_PREFIX}/{step.module}/upsert duplicate_check_fields=[{fields}]"


def _absent_record_calls(step: Step) -> str:
    behaviour = absent_record_behaviour(step)
    if behaviour is not WhenAbsent.CREATE:
        return str(behaviour)
    if step.strategy is Strategy.UPSERT:
        return _upsert_call(step)
    return f"POST {API_PREFIX}/{step.module}"


def plan_as_dict(plan: Plan) -> dict[str, Any]:
    """Return the plan as JSON-ready data; golden test files use exactly this form."""
    return {
        "event_id": plan.event_id,
        "event_type": plan.event_type,
        "event_time": plan.event_time.isoformat() if plan.event_time else None,
        "ignored": plan.ignored,
        "record_keys": [
            {"module": key.module, "field": key.field, "value": key.value}
            for key in plan.record_keys
        ],
        "steps": [_step_as_dict(step) for step in plan.steps],
    }


def plan_as_text(plan: Plan) -> str:
    """Return the plan as readable lines, one block per step."""
    when = plan.event_time.isoformat() if plan.event_time else "no event time"
    lines = [f"event {plan.event_id} {plan.event_type} ({when})"]
    if plan.ignored:
        lines.append("ignored: the mappings list this event type under `ignore`; no Zoho call")
        return "\n".join(lines)

    for number, step in enumerate(plan.steps, start=1):
        lines.append("")
        lines.append(f"{number}. {step.id}: {step.action} {step.module} ({step.strategy})")
        if step.skip_reason is not None:
            lines.append(f"   {describe_operation(step)}")
            lines.append(f"   skipped: {step.skip_reason}")
            continue
        lines.append(f"   normal path: {describe_operation(step)}")
        lines.extend(f"   otherwise, {text}" for text in describe_alternatives(step))
        if step.match is not None:
            lines.append(f"   match {step.match.field} = {_json(step.match.value)}")
        for value in step.fields:
            source = f"  <- {format_path(value.source)}" if value.source else ""
            create_only = "  (on create only)" if value.on_create_only else ""
            lines.append(f"   {value.field} = {_json(value.value)}{create_only}{source}")
        for link in step.links:
            target = f"record id of step {link.step_id}" if link.step_id else "null (cleared)"
            lines.append(f"   {link.field} = {target}")
    return "\n".join(lines)


def _step_as_dict(step: Step) -> dict[str, Any]:
    return {
        "id": step.id,
        "action": str(step.action),
        "module": step.module,
        "strategy": str(step.strategy),
        "operation": describe_operation(step),
        "alternatives": describe_alternatives(step),
        "match": None
        if step.match is None
        else {
            "field": step.match.field,
            "value": step.match.value,
            "source": _source(step.match.source),
        },
        "duplicate_check_fields": list(step.duplicate_check_fields),
        "when_absent": str(step.when_absent),
        "skip_reason": step.skip_reason,
        "fields": [
            {
                "field": value.field,
                "value": value.value,
                "source": _source(value.source),
                "on_create_only": value.on_create_only,
            }
            for value in step.fields
        ],
        "lookups": [{"field": link.field, "step": link.step_id} for link in step.links],
    }


def _source(path: tuple[str | int, ...] | None) -> str | None:
    return format_path(path) if path is not None else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
