"""The runner: executes a `Plan` against Zoho CRM, step by step, and reports what each step did.

How each action behaves is documented on `engine.planning.plan.Action`. With strategy `upsert`,
a step that creates an absent record is one `upsert` call keyed on the module's unique field,
never search-then-insert, because Zoho's search index lags writes by up to a minute. Lookups to
earlier steps are written as `{"id": "<record id>"}`, and `None` clears them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from engine.errors import (
    ErrorDetail,
    InternalError,
    RecordNotFoundError,
    ZohoDataError,
    ZohoError,
    ZohoUnavailableError,
)
from engine.events.paths import format_path
from engine.planning.plan import (
    Action,
    EventPath,
    Outcome,
    Plan,
    RecordMatch,
    RunResult,
    Step,
    StepResult,
    Strategy,
    WhenAbsent,
)
from engine.zoho.client import RecordResult, ZohoClient
from engine.zoho.criteria import values_equal
from engine.zoho.outcomes import classify

logger = logging.getLogger(__name__)

BUDGET_SPENT_RETRY_AFTER_SECONDS = 1.0
"""`Retry-After` sent when the time budget runs out between steps: Zoho itself did not fail."""

WRITE_OUTCOMES = {
    Action.LINK: Outcome.LINKED,
    Action.UNLINK: Outcome.UNLINKED,
}


class RecordIdLookup(Protocol):
    """Record ids the connector stored earlier (the journal), consulted before any search."""

    def get(self, module: str, field: str, value: Any) -> str | None:
        """Return the id of the record whose `field` equals `value`, or `None` when unknown."""
        ...


class Runner:
    """Executes plans with one `ZohoClient`; safe to share between threads."""

    def __init__(self, client: ZohoClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._clock = clock

    def run(
        self,
        plan: Plan,
        *,
        deadline: float | None = None,
        known_record_ids: RecordIdLookup | None = None,
        completed: Mapping[str, StepResult] | None = None,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> RunResult:
        """Run every step of `plan` in order and return one result per step.

        Steps in `completed` (results of an earlier attempt at the same event) are reused
        without calling Zoho. `on_step` is called after each step that ran now, before the next
        one starts, so a journal can persist progress. The first failing step raises: a
        `ZohoDataError` (with `loc` = the event path of the rejected value) when Zoho rejected
        a value, `RecordNotFoundError` for `when_absent: fail`, or another `ZohoError`.

        `deadline` is a value of the runner's clock (`time.monotonic()` by default). A step that
        would call Zoho after it raises `ZohoUnavailableError` with `retry_after`, and a retry
        of the event resumes at that step.
        """
        result = RunResult()
        record_ids: dict[str, str | None] = {}
        earlier = completed or {}
        steps_by_id = {step.id: step for step in plan.steps}

        for step in plan.steps:
            if step.id in earlier:
                reused = earlier[step.id]
                record_ids[step.id] = reused.record_id
                result.steps.append(reused)
                continue

            if step.skip_reason is None:
                self._check_deadline(step, deadline)
            execution = _StepExecution(
                self.client, step, steps_by_id, record_ids, known_record_ids, deadline
            )
            step_result = execution.run()
            record_ids[step.id] = step_result.record_id
            result.steps.append(step_result)
            logger.debug(
                "step done",
                extra={
                    "event_id": plan.event_id,
                    "step": step.id,
                    "zoho_module": step.module,
                    "action": str(step.action),
                    "outcome": str(step_result.outcome),
                    "record_id": step_result.record_id,
                    "zoho_calls": step_result.zoho_calls,
                },
            )
            if on_step is not None:
                on_step(step_result)
        return result

    def _check_deadline(self, step: Step, deadline: float | None) -> None:
        # The service logs the raised error with the event id, so nothing is logged here.
        if deadline is None or self._clock() < deadline:
            return
        raise ZohoUnavailableError(
            f"the event's time budget ran out before step {step.id}; the steps before it are "
            "done, and a retry of the event resumes at this step",
            retry_after=BUDGET_SPENT_RETRY_AFTER_SECONDS,
        )


class _StepExecution:
    """One step's Zoho calls, counted for `StepResult.zoho_calls`."""

    def __init__(
        self,
        client: ZohoClient,
        step: Step,
        steps_by_id: Mapping[str, Step],
        record_ids: Mapping[str, str | None],
        known_record_ids: RecordIdLookup | None,
        deadline: float | None,
    ) -> None:
        self.client = client
        self.step = step
        self.steps_by_id = steps_by_id
        self.record_ids = record_ids
        self.known_record_ids = known_record_ids
        self.deadline = deadline
        self.calls = 0

    def run(self) -> StepResult:
        step = self.step
        if step.skip_reason is not None:
            return self._result(Outcome.SKIPPED, None, reason=step.skip_reason)
        if step.action is Action.CREATE:
            return self._result(Outcome.CREATED, self._insert())
        if step.match is None:
            raise InternalError(f"step {step.id} ({step.action}) has no key to match on")

        creates_when_absent = (
            step.action is Action.FIND_OR_CREATE or step.when_absent is WhenAbsent.CREATE
        )
        if (
            step.strategy is Strategy.UPSERT
            and creates_when_absent
            and step.action is not Action.FIND
        ):
            return self._upsert_step()

        located = self._locate(step.match)
        if located is None:
            return self._absent(step.match)
        record_id, current = located
        if step.action is Action.FIND:
            return self._result(Outcome.FOUND, record_id)
        changes = self._changes(include_create_only=False, include_key=False)
        if already_written(current, changes):
            return self._result(Outcome.UNCHANGED, record_id)
        self._check(self._call(self.client.update, step.module, [{"id": record_id, **changes}]))
        return self._result(WRITE_OUTCOMES.get(step.action, Outcome.UPDATED), record_id)

    # Finding the record

    def _locate(self, match: RecordMatch) -> tuple[str, Mapping[str, Any]] | None:
        """Return the id and fields of the record matching the step's key, or `None`.

        A record id from the journal is confirmed with a GET, because the record may have been
        deleted or its key changed in Zoho. Without a confirmed id, the search index decides.

        NOTE: search lags writes by up to about a minute, so a record that another system
        created moments ago can be reported absent (skipped, or created twice with `search`).
        """
        step = self.step
        field, value = match.field, match.value

        if self.known_record_ids is not None:
            known_id = self.known_record_ids.get(step.module, field, value)
            if known_id is not None:
                record = self._call(self.client.get, step.module, known_id)
                if record is not None and values_equal(record.get(field), value):
                    return known_id, record

        found = self._call(self.client.search_exact, step.module, field, value)
        if not found:
            return None
        if len(found) > 1:
            logger.warning(
                "several records have the same key; using the oldest",
                extra={
                    "zoho_module": step.module,
                    "field": field,
                    "count": len(found),
                    "step": step.id,
                },
            )
        oldest = min(found, key=lambda record: int(str(record.get("id", "0"))))
        return str(oldest["id"]), oldest

    def _absent(self, match: RecordMatch) -> StepResult:
        step = self.step
        description = f"no {step.module} record with {match.field} = {match.value!r}"
        if step.when_absent is WhenAbsent.SKIP and step.action is not Action.FIND_OR_CREATE:
            return self._result(Outcome.SKIPPED, None, reason=description)
        if step.when_absent is WhenAbsent.FAIL and step.action is not Action.FIND_OR_CREATE:
            # The message is logged at warning level and stored in the journal, so it names the
            # key's event path but not its value, which can be personal data such as an MSISDN.
            # The value stays in `details`, which only the response body carries.
            origin = f" from {format_path(match.source)}" if match.source else ""
            raise RecordNotFoundError(
                f"step {step.id}: no {step.module} record has the {match.field} value{origin}",
                details=[
                    ErrorDetail(
                        loc=match.source or (step.module, match.field),
                        msg=description,
                        type="record_not_found",
                    )
                ],
            )
        if step.strategy is Strategy.UPSERT:
            return self._upsert_step()
        return self._insert_or_update_duplicate(match)

    def _insert_or_update_duplicate(self, match: RecordMatch) -> StepResult:
        """Insert the record; if Zoho reports its key as a duplicate, update that record.

        Search can miss a record written moments ago. When the key field is unique in Zoho,
        the insert then fails with DUPLICATE_DATA naming the existing record, which is updated
        instead of failing the event.
        """
        step = self.step
        record = self._changes(include_create_only=True, include_key=True)
        result = self._call(self.client.insert, step.module, [record])[0]
        duplicate = result.details.get("duplicate_record")
        if (
            result.code == "DUPLICATE_DATA"
            and result.api_name == match.field
            and isinstance(duplicate, Mapping)
            and duplicate.get("id")
        ):
            existing_id = str(duplicate["id"])
            logger.info(
                "search missed an existing record; updating the duplicate Zoho reported",
                extra={"zoho_module": step.module, "step": step.id, "record_id": existing_id},
            )
            if step.action is Action.FIND:
                return self._result(Outcome.FOUND, existing_id)
            changes = self._changes(include_create_only=False, include_key=False)
            if not changes:
                return self._result(Outcome.UNCHANGED, existing_id)
            self._check(
                self._call(self.client.update, step.module, [{"id": existing_id, **changes}])
            )
            return self._result(WRITE_OUTCOMES.get(step.action, Outcome.UPDATED), existing_id)
        self._check([result])
        return self._result(Outcome.CREATED, result.id)

    # Writing

    def _insert(self) -> str:
        record = self._changes(include_create_only=True, include_key=True)
        result = self._check(self._call(self.client.insert, self.step.module, [record]))
        return str(result.id)

    def _upsert_step(self) -> StepResult:
        """Create or update the record with one upsert, keeping `on_create_only` fields.

        The first upsert leaves out the fields that must not overwrite an existing value. If
        Zoho then reports one of them missing (MANDATORY_NOT_FOUND), the record did not exist,
        so the upsert is repeated with them. If it inserted a record without them, they are
        written by id.
        """
        step = self.step
        key_fields = step.duplicate_check_fields or ((step.match.field,) if step.match else ())
        create_only = {item.field: item.value for item in step.fields if item.on_create_only}
        record = self._changes(include_create_only=False, include_key=True)

        result = self._call(self.client.upsert, step.module, [record], key_fields)[0]
        if (
            not result.ok
            and result.code == "MANDATORY_NOT_FOUND"
            and result.api_name in create_only
        ):
            # NOTE: it is unconfirmed that Zoho's upsert skips the mandatory check when it
            # updates an existing record. If it does not, every update takes this path and
            # overwrites the create-only fields.
            result = self._call(
                self.client.upsert, step.module, [{**record, **create_only}], key_fields
            )[0]
        elif result.ok and result.action == "insert" and create_only:
            self._check(
                self._call(self.client.update, step.module, [{"id": result.id, **create_only}])
            )
        self._check([result])

        if result.action == "insert":
            return self._result(Outcome.CREATED, result.id)
        if step.action is Action.FIND:
            return self._result(Outcome.FOUND, result.id)
        # The upsert wrote without reading the record first, so it is unknown whether a value
        # differed. The outcome reports the values as written, and `unchanged` means only that
        # the step had nothing to write besides the key.
        if not self._changes(include_create_only=False, include_key=False):
            return self._result(Outcome.UNCHANGED, result.id)
        return self._result(WRITE_OUTCOMES.get(step.action, Outcome.UPDATED), result.id)

    def _changes(self, *, include_create_only: bool, include_key: bool) -> dict[str, Any]:
        """Return the field values and lookups the step writes, as a Zoho record body."""
        step = self.step
        record: dict[str, Any] = {}
        if include_key and step.match is not None:
            record[step.match.field] = step.match.value
        for item in step.fields:
            if item.on_create_only and not include_create_only:
                continue
            record[item.field] = item.value
        for link in step.links:
            if link.step_id is None:
                record[link.field] = None
                continue
            if link.step_id not in self.record_ids:
                raise InternalError(
                    f"step {step.id} links {link.field} to step {link.step_id}, "
                    "which has not run before it"
                )
            linked_id = self.record_ids[link.step_id]
            # A lookup to a step that found no record (skipped) is left as it is.
            if linked_id is not None:
                record[link.field] = {"id": linked_id}
        return record

    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        self.calls += 1
        return method(*args, deadline=self.deadline)

    def _check(self, results: list[RecordResult]) -> RecordResult:
        result = results[0]
        if not result.ok:
            raise self._record_error(result)
        return result

    def _record_error(self, result: RecordResult) -> ZohoError:
        step = self.step
        api_name = result.api_name
        location = self._event_path(api_name)
        about = f"{step.module}.{api_name}" if api_name else step.module
        explanation = f"{result.message} ({result.code})"
        if "maximum_length" in result.details:
            explanation += f", at most {result.details['maximum_length']} characters"
        if "expected_data_type" in result.details:
            explanation += f", expected {result.details['expected_data_type']}"
        duplicate = result.details.get("duplicate_record")
        if isinstance(duplicate, Mapping) and duplicate.get("id"):
            explanation += f", already used by record {duplicate['id']}"
        message = f"step {step.id}: Zoho CRM rejected {about}: {explanation}"

        rule = classify(400, result.code)
        if rule.error is ZohoDataError:
            detail = ErrorDetail(
                loc=location,
                msg=f"Zoho CRM rejected {about}: {explanation}",
                type=f"zoho.{result.code.lower()}",
            )
            return ZohoDataError(message, details=[detail])
        return rule.error(f"{message}: {rule.hint}")

    def _event_path(self, api_name: str | None) -> EventPath:
        """Return the `loc` of a Zoho data error on `api_name`, never an empty one.

        That is the event path the value came from: the field value's `source`, the key's
        `source`, or for a lookup the key path of the step it links to. A value with no single
        event path (a constant, or an expression the planner gave no source) gets
        `(module, field)` instead, and an error that names no field gets `(module,)`.
        """
        step = self.step
        if api_name is None:
            return (step.module,)
        for item in step.fields:
            if item.field == api_name and item.source is not None:
                return item.source
        if step.match is not None and step.match.field == api_name and step.match.source:
            return step.match.source
        for link in step.links:
            if link.field != api_name or link.step_id is None:
                continue
            linked = self.steps_by_id.get(link.step_id)
            if linked is not None and linked.match is not None and linked.match.source:
                return linked.match.source
        return (step.module, api_name)

    def _result(
        self, outcome: Outcome, record_id: str | None, *, reason: str | None = None
    ) -> StepResult:
        return StepResult(
            step_id=self.step.id,
            module=self.step.module,
            action=self.step.action,
            outcome=outcome,
            record_id=record_id,
            reason=reason,
            zoho_calls=self.calls,
        )


def already_written(record: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
    """Tell whether `record`, as read from Zoho, already has every value in `changes`.

    A field missing from the record counts as different, so the write happens. A lookup
    compares ids, and `None` (clear) matches only an empty value.
    """
    for field, planned in changes.items():
        if field not in record:
            return False
        current = record[field]
        if planned is None:
            if current not in (None, ""):
                return False
        elif isinstance(planned, Mapping):
            if not isinstance(current, Mapping) or str(current.get("id")) != str(planned.get("id")):
                return False
        elif not values_equal(current, planned):
            return False
    return True
