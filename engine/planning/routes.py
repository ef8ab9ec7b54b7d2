"""How a step reaches its record in Zoho CRM: the decision that the runner makes and `plan` shows.

The planner decides what a step writes. The route decides which Zoho call comes first:
- none for a skipped step;
- an insert for `create`;
- one upsert when the module has a unique key field and an absent record is created;
- otherwise a lookup (a GET by a record id the journal stores, else a search), followed by an
  update, or by what `when_absent` sets when no record matches.
"""

from __future__ import annotations

from enum import StrEnum

from engine.planning.plan import Action, Step, Strategy, WhenAbsent


class Route(StrEnum):
    """First Zoho call of a step."""

    NONE = "none"
    """The planner skipped the step; no call."""

    INSERT = "insert"
    """`create`: one insert, without looking a record up."""

    UPSERT = "upsert"
    """One upsert on `duplicate_check_fields`, which updates the record or creates it."""

    LOOKUP = "lookup"
    """A GET by the record id the journal stores, else a search; then an update by id, or the
    step's behaviour for an absent record."""


def step_route(step: Step) -> Route:
    """Return the route of a step.

    A `find` step never upserts first, because an upsert writes and `find` must not. It looks
    the record up, and only an absent record with `when_absent: create` is upserted.
    """
    if step.skip_reason is not None:
        return Route.NONE
    if step.action is Action.CREATE:
        return Route.INSERT
    if (
        step.strategy is Strategy.UPSERT
        and absent_record_behaviour(step) is WhenAbsent.CREATE
        and step.action is not Action.FIND
    ):
        return Route.UPSERT
    return Route.LOOKUP


def absent_record_behaviour(step: Step) -> WhenAbsent:
    """Return what a step does when no record matches; `find_or_create` always creates."""
    if step.action is Action.FIND_OR_CREATE:
        return WhenAbsent.CREATE
    return step.when_absent


def writes_found_record(step: Step) -> bool:
    """Return whether the step writes to a record it found: any field that is not written on
    create only, or any lookup. A lookup to a step that found no record is left out at run time,
    so a step with only such lookups may still write nothing."""
    if step.action is Action.FIND:
        return False
    return any(not value.on_create_only for value in step.fields) or bool(step.links)
