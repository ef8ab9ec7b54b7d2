"""Rendering a plan for people and for tools: the `plan` command's text and JSON output.

The Zoho operation shown per step is the one the runner is built to send; the planner itself
calls nothing.
"""

from __future__ import annotations

import json
from typing import Any

from engine.events.paths import format_path
from engine.planning.plan import Action, Plan, Step, Strategy, WhenAbsent

API_PREFIX = "/crm/v8"


def describe_operation(step: Step) -> str:
    """Return the Zoho call(s) a step causes, e.g. `POST /crm/v8/Contacts/upsert ...`."""
    module = step.module
    if step.skip_reason is not None:
        return "no call (skipped)"
    if step.action is Action.CREATE:
        return f"POST {API_PREFIX}/{module}"
    if step.match is None:
        return "no call (no record to match)"

    writes = step.action is not Action.FIND
    creates = step.when_absent is WhenAbsent.CREATE
    if step.strategy is Strategy.UPSERT and writes and creates:
        fields = ",".join(step.duplicate_check_fields)
        return f"POST {API_PREFIX}/{module}/upsert duplicate_check_fields=[{fields}]"

    criteria = f"({step.match.field}:equals:{_criteria_value(step.match.value)})"
    search = f"GET {API_PREFIX}/{module}/search?criteria={criteria} (exact re-check)"
    if not writes:
        return f"{search}; absent: {step.when_absent}"
    absent = f"POST {API_PREFIX}/{module}" if creates else str(step.when_absent)
    return f"{search}; found: PUT {API_PREFIX}/{module}/{{id}}; absent: {absent}"


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
        lines.append(f"   {describe_operation(step)}")
        if step.skip_reason is not None:
            lines.append(f"   skipped: {step.skip_reason}")
            continue
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


def _criteria_value(value: Any) -> str:
    text = str(value)
    for character in ("\\", "(", ")", ","):
        text = text.replace(character, "\\" + character)
    return text
