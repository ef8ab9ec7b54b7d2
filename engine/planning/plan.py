"""Plan objects: the contract between the planner and the runner.

The planner turns one validated event into a `Plan` without any network access. The runner
executes exactly these objects against Zoho CRM and returns one `StepResult` per step. Values in
a plan are already in Zoho's JSON shapes: picklists as display strings, booleans as true/false,
long numbers as JSON numbers, record ids as strings, and `None` to clear a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

EventPath = tuple[str | int, ...]


class Action(StrEnum):
    """Operation a step performs on the record it matches.

    | action         | record found                              | record absent        |
    |----------------|-------------------------------------------|----------------------|
    | find           | nothing is written; its id is remembered  | `when_absent`        |
    | create         | (not looked up) a new record is inserted  | a new record         |
    | update         | fields and links are written              | `when_absent`        |
    | find_or_create | fields and links are written              | created              |
    | link           | fields are written, lookups set           | `when_absent`        |
    | unlink         | fields are written, lookups cleared       | `when_absent`        |
    """

    FIND = "find"
    CREATE = "create"
    UPDATE = "update"
    FIND_OR_CREATE = "find_or_create"
    LINK = "link"
    UNLINK = "unlink"


class WhenAbsent(StrEnum):
    """Behaviour of a step when no record matches."""

    CREATE = "create"
    SKIP = "skip"
    FAIL = "fail"


class Strategy(StrEnum):
    """Lookup method for the records of a module, declared per module in the mappings."""

    UPSERT = "upsert"
    """`POST /{module}/upsert` with `duplicate_check_fields`: needs a unique key field, and is
    safe under Zoho's search index lag."""

    SEARCH = "search"
    """`GET /{module}/search` with an exact re-check of the key, then insert or update by id.
    For orgs without a unique key field; subject to the search index lag."""


class Outcome(StrEnum):
    """Result of one step, as reported to NSPS and stored in the journal.

    `updated`, `linked` and `unlinked` mean the record was written. `unchanged` means the runner
    had read the record and found every planned value already there, so it wrote nothing. The
    upsert strategy reads nothing on its normal path, so it never reports `unchanged`.
    """

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    LINKED = "linked"
    UNLINKED = "unlinked"
    FOUND = "found"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class FieldValue:
    """One Zoho field value that a step writes."""

    field: str
    value: Any
    source: EventPath | None
    """Event path the value came from, used to trace a Zoho data error back to the event.
    `None` for constants and templates that read several paths."""

    on_create_only: bool = False
    """Written only when the step creates the record, never over an existing value
    (for example the `Last_Name` fallback)."""


@dataclass(frozen=True)
class RecordMatch:
    """Key field of a step's record and the value it must equal exactly."""

    field: str
    value: Any
    source: EventPath | None


@dataclass(frozen=True)
class LookupLink:
    """A lookup field set from an earlier step's record id, or cleared when `step_id` is None."""

    field: str
    step_id: str | None


@dataclass(frozen=True)
class Step:
    """One Zoho operation of a plan, with every value it needs already resolved."""

    id: str
    action: Action
    module: str
    strategy: Strategy
    match: RecordMatch | None
    """`None` only for `create`, which never looks a record up."""

    duplicate_check_fields: tuple[str, ...] = ()
    fields: tuple[FieldValue, ...] = ()
    links: tuple[LookupLink, ...] = ()
    when_absent: WhenAbsent = WhenAbsent.CREATE
    skip_reason: str | None = None
    """Reason the planner already decided that the step does nothing: a false condition, or an
    absent input with `when_input_absent: skip`. The runner reports the step as skipped."""

    def describe(self) -> str:
        """Return a one-line summary such as `find_or_create Contacts where I_PB = "x"`."""
        if self.match is None:
            return f"{self.action} {self.module}"
        return f"{self.action} {self.module} where {self.match.field} = {self.match.value!r}"


@dataclass(frozen=True)
class RecordKey:
    """Identity of one CRM record that an event touches, for ordering and locking."""

    module: str
    field: str
    value: Any


@dataclass(frozen=True)
class Plan:
    """Everything one event does in Zoho CRM, in order."""

    event_id: str
    event_type: str
    steps: tuple[Step, ...]
    event_time: datetime | None = None
    """When the event happened (`created_at`, else `data.variables.event_time`), in UTC."""

    ignored: bool = False
    """The mappings declare this event type as ignored; `steps` is empty."""

    record_keys: tuple[RecordKey, ...] = ()
    """Every record the plan matches, in step order, without duplicates."""


@dataclass(frozen=True)
class StepResult:
    """Record of what the runner did for one step."""

    step_id: str
    module: str
    action: Action
    outcome: Outcome
    record_id: str | None = None
    reason: str | None = None
    zoho_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "step": self.step_id,
            "module": self.module,
            "action": str(self.action),
            "outcome": str(self.outcome),
            "record_id": self.record_id,
        }
        if self.reason:
            result["reason"] = self.reason
        return result


@dataclass
class RunResult:
    """Record of what the runner did for a whole plan."""

    steps: list[StepResult] = field(default_factory=list)

    @property
    def zoho_calls(self) -> int:
        return sum(step.zoho_calls for step in self.steps)
