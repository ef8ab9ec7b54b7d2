"""The event processor: exactly-once effect in Zoho CRM under NSPS's at-least-once delivery.

NSPS retries an event until it gets a 2xx response (about 24 hours, then for about a month with
backoff), and operators replay events by hand. So the same event arrives many times, older
events arrive after newer ones, and events for one account arrive in bursts. For each event the
processor:

1. responds from the journal, with no Zoho call, when the event id already finished;
2. plans the event (no network); an invalid event is journaled as failed and re-raised;
3. locks every record the plan matches, in this process and across processes;
4. skips the steps whose record already contains data from a newer event;
5. runs the rest, journaling each completed step at once, so a retry after a failure or a crash
   resumes after the last completed step instead of repeating it;
6. journals the outcome, or the error, which it re-raises so that NSPS retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from engine.delivery.facts import event_id_of, facts_from_body, facts_from_plan
from engine.delivery.locks import LockTimeoutError, RecordLocks
from engine.delivery.ordering import (
    APPLIED_OUTCOMES,
    STALE_REASON,
    is_wholly_stale,
    recordable_event_time,
    stale_step_ids,
    step_key,
)
from engine.errors import ConnectorError, EventNotFoundError, RateLimitError
from engine.journal.base import (
    EventFacts,
    EventOutcome,
    Journal,
    JournalBusyError,
    JournalEntry,
    KnownRecordIds,
    normalize_event_id,
)
from engine.planning.plan import Outcome, Plan, RunResult, Step, StepResult

logger = logging.getLogger(__name__)

ACCEPTED = 202

# How far ahead of the wall clock an event time may be and still be remembered as a record's
# newest time. `EVENT_TIME_MAX_SKEW_SECONDS` sets it in the service.
DEFAULT_MAX_FUTURE_SKEW = timedelta(days=1)

# Share of the time budget that an event may spend waiting for its record locks; the rest is
# left for the Zoho calls.
LOCK_WAIT_SHARE = 0.5

# `Retry-After` sent to NSPS when another event keeps the record locks past the wait.
LOCK_BUSY_RETRY_AFTER_SECONDS = 1.0

# `Retry-After` sent to NSPS when another connection keeps the journal locked past the
# journal's busy timeout.
JOURNAL_BUSY_RETRY_AFTER_SECONDS = 5.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EventPlanner(Protocol):
    def plan(self, body: Any) -> Plan: ...


class PlanRunner(Protocol):
    def run(
        self,
        plan: Plan,
        *,
        deadline: float | None = ...,
        known_record_ids: Any = ...,
        completed: Mapping[str, StepResult] | None = ...,
        on_step: Callable[[StepResult], None] | None = ...,
    ) -> RunResult: ...


@dataclass(frozen=True)
class ProcessResult:
    """The response to one event delivery, before the HTTP layer renders it."""

    status: int
    body: dict[str, Any]
    event_id: str | None
    event_type: str | None
    outcome: str
    """processed, duplicate, stale or ignored."""

    zoho_calls: int = 0
    steps: tuple[StepResult, ...] = field(default=(), compare=False)


class EventProcessor:
    """Runs NSPS events through the planner and the runner with the delivery guarantees."""

    def __init__(
        self,
        planner: EventPlanner,
        runner: PlanRunner,
        journal: Journal,
        *,
        budget_seconds: float = 20.0,
        lock_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """`clock` measures the time budget. `wall_clock` and `max_future_skew` set the latest
        event time that is remembered as a record's newest time (see `engine.delivery.ordering`).
        """
        if budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be positive, got {budget_seconds}")
        self.planner = planner
        self.runner = runner
        self.journal = journal
        self.budget_seconds = budget_seconds
        self.max_future_skew = max_future_skew
        self.locks = RecordLocks(lock_dir, clock=clock)
        self._clock = clock
        self._wall_clock = wall_clock
        self._known_record_ids = KnownRecordIds(journal)

    def process(self, body: Any) -> ProcessResult:
        """Process one event delivery; raise a `ConnectorError` when NSPS should see an error.

        Zoho errors, lock timeouts and a busy journal carry `retry_after` for the
        `Retry-After` header.
        """
        try:
            return self._process(body)
        except JournalBusyError as error:
            logger.warning(
                "journal busy, asking NSPS to retry the event",
                extra={"error_message": str(error)},
            )
            raise RateLimitError(
                "the journal is locked by another process; retry later",
                retry_after=JOURNAL_BUSY_RETRY_AFTER_SECONDS,
            ) from error

    def _process(self, body: Any) -> ProcessResult:
        deadline = self._clock() + self.budget_seconds

        event_id = event_id_of(body)
        if event_id is not None:
            entry = self.journal.get(event_id)
            if entry is not None and entry.outcome.finished:
                return self._duplicate_response(entry, body)

        plan = self._plan(body)
        facts = facts_from_plan(body, plan)
        if plan.ignored:
            return self._ignored_response(facts)

        lock_deadline = self._clock() + self.budget_seconds * LOCK_WAIT_SHARE
        try:
            with self.locks.hold(plan.record_keys, deadline=lock_deadline):
                return self._process_locked(plan, facts, deadline, body)
        except LockTimeoutError as error:
            self.journal.receive(facts)
            logger.warning(
                "record locks busy, asking NSPS to retry the event",
                extra={"event_id": plan.event_id, "event_type": plan.event_type},
            )
            raise RateLimitError(
                "another event for the same account or SIM card is still being processed; "
                "retry later",
                retry_after=LOCK_BUSY_RETRY_AFTER_SECONDS,
            ) from error

    def replay(self, event_id: str) -> ProcessResult:
        """Process a journaled event again from its stored body.

        An event that already finished gets a duplicate response, with no Zoho call; a failed
        or unfinished one resumes after its last completed step.
        """
        entry = self.journal.get(event_id, with_body=True)
        if entry is None or entry.body is None:
            raise EventNotFoundError(
                f"event {event_id} is not in the journal, or was stored without its body"
            )
        return self.process(entry.body)

    # Phases

    def _plan(self, body: Any) -> Plan:
        try:
            return self.planner.plan(body)
        except ConnectorError as error:
            facts = facts_from_body(body)
            if facts is not None:
                self.journal.fail(
                    facts, error_code=error.code, error_message=error.message, count_attempt=True
                )
            raise

    def _process_locked(
        self, plan: Plan, facts: EventFacts, deadline: float, body: Any
    ) -> ProcessResult:
        entry, started = self.journal.start_attempt(facts)
        if not started:
            # Another delivery of the same event finished while this one waited for the locks.
            return self._duplicate_response(entry, body)

        latest = self._latest_event_time()
        event_time = recordable_event_time(plan, latest=latest)
        applied = self.journal.newest_applied(plan.record_keys)
        stale_ids = stale_step_ids(plan, applied, event_time=event_time, latest=latest)
        if is_wholly_stale(plan, stale_ids):
            return self._stale_response(plan)

        completed = dict(entry.completed_steps)
        skipped_as_stale = [
            step for step in plan.steps if step.id in stale_ids and step.id not in completed
        ]
        for step in skipped_as_stale:
            completed[step.id] = self._stale_result(step)

        recorded: set[str] = set()

        def on_step(result: StepResult) -> None:
            self._record_step(plan, result, event_time, latest)
            recorded.add(result.step_id)

        try:
            run = self.runner.run(
                plan,
                deadline=deadline,
                known_record_ids=self._known_record_ids,
                completed=completed,
                on_step=on_step,
            )
        except ConnectorError as error:
            self.journal.fail(
                facts, error_code=error.code, error_message=error.message, count_attempt=False
            )
            raise
        except Exception as error:
            self.journal.fail(
                facts,
                error_code="internal_error",
                error_message=f"unexpected {type(error).__name__} while running the plan",
                count_attempt=False,
            )
            raise

        steps = _ordered_results(plan, run, completed)
        for result in steps:
            if result.step_id not in completed and result.step_id not in recorded:
                self._record_step(plan, result, event_time, latest)
        self.journal.finish(plan.event_id, EventOutcome.PROCESSED, steps)

        zoho_calls = sum(step.zoho_calls for step in steps if step.step_id not in completed)
        message = "event processed"
        if skipped_as_stale:
            message = f"event processed, {len(skipped_as_stale)} stale step(s) skipped"
        return _result(plan.event_id, plan.event_type, "processed", message, steps, zoho_calls)

    def _latest_event_time(self) -> datetime:
        """Return the latest event time that may be remembered as a record's newest time."""
        try:
            return self._wall_clock() + self.max_future_skew
        except OverflowError:
            return datetime.max.replace(tzinfo=UTC)

    def _record_step(
        self, plan: Plan, result: StepResult, event_time: datetime | None, latest: datetime
    ) -> None:
        step = _step_by_id(plan, result.step_id)
        key = step_key(step) if step is not None else None
        self.journal.record_step(
            plan.event_id,
            result,
            key=key,
            event_time=event_time,
            applied=result.outcome in APPLIED_OUTCOMES,
            replace_after=latest,
        )

    def _stale_result(self, step: Step) -> StepResult:
        # The record id lets later steps link to the record without writing it.
        key = step_key(step)
        record_id = self.journal.record_id(key.module, key.field, key.value) if key else None
        return StepResult(
            step_id=step.id,
            module=step.module,
            action=step.action,
            outcome=Outcome.SKIPPED,
            record_id=record_id,
            reason=STALE_REASON,
        )

    # Responses

    def _duplicate_response(self, entry: JournalEntry, body: Any) -> ProcessResult:
        self.journal.note_duplicate(entry.event_id)
        self._warn_if_body_differs(entry.event_id, body)
        result = _result(
            entry.event_id,
            entry.event_type,
            "duplicate",
            f"duplicate, the event was already {entry.outcome}",
            entry.steps,
            0,
        )
        result.body["previous_outcome"] = str(entry.outcome)
        return result

    def _warn_if_body_differs(self, event_id: str, body: Any) -> None:
        """Log a warning when a finished event id arrives with a body unlike the stored one.

        The delivery still gets the stored outcome, because the event id is the identity NSPS
        gives an event. A different body under the same id points to a sender that reuses ids,
        so an operator should know. The log line has the event id and never the bodies.
        """
        stored = self.journal.get(event_id, with_body=True)
        if stored is None or stored.body is None:
            return
        if _comparable_body(stored.body) == _comparable_body(body):
            return
        logger.warning(
            "event id already processed with a different body: responding with the stored "
            "outcome, and the new body is not processed",
            extra={"event_id": event_id, "previous_outcome": str(stored.outcome)},
        )

    def _stale_response(self, plan: Plan) -> ProcessResult:
        steps = tuple(self._stale_result(step) for step in plan.steps)
        self.journal.finish(plan.event_id, EventOutcome.STALE, steps)
        logger.info(
            "event is older than data already applied, skipped",
            extra={"event_id": plan.event_id, "event_type": plan.event_type},
        )
        return _result(plan.event_id, plan.event_type, "stale", "stale, skipped", steps, 0)

    def _ignored_response(self, facts: EventFacts) -> ProcessResult:
        entry, started = self.journal.start_attempt(facts)
        if not started:
            return self._duplicate_response(entry, facts.body)
        self.journal.finish(facts.event_id, EventOutcome.IGNORED, ())
        return _result(
            facts.event_id,
            facts.event_type,
            "ignored",
            "ignored, the mappings declare this event type as ignored",
            (),
            0,
        )


def _comparable_body(body: Any) -> Any:
    """Return the body with its event id as the journal stores it, for comparing deliveries."""
    if isinstance(body, dict) and isinstance(body.get("event_id"), str):
        return {**body, "event_id": normalize_event_id(body["event_id"])}
    return body


def _result(
    event_id: str | None,
    event_type: str | None,
    outcome: str,
    message: str,
    steps: tuple[StepResult, ...] | list[StepResult],
    zoho_calls: int,
) -> ProcessResult:
    body = {
        "message": message,
        "event_id": event_id,
        "event_type": event_type,
        "outcome": outcome,
        "steps": [step.as_dict() for step in steps],
    }
    return ProcessResult(
        status=ACCEPTED,
        body=body,
        event_id=event_id,
        event_type=event_type,
        outcome=outcome,
        zoho_calls=zoho_calls,
        steps=tuple(steps),
    )


def _ordered_results(
    plan: Plan, run: RunResult, completed: Mapping[str, StepResult]
) -> tuple[StepResult, ...]:
    """Return one result per step in plan order, taking earlier attempts' results as given."""
    by_id = {result.step_id: result for result in run.steps}
    ordered = []
    for step in plan.steps:
        result = completed.get(step.id) or by_id.get(step.id)
        if result is not None:
            ordered.append(result)
    return tuple(ordered)


def _step_by_id(plan: Plan, step_id: str) -> Step | None:
    for step in plan.steps:
        if step.id == step_id:
            return step
    return None
