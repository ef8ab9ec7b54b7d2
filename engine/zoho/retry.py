"""Retries of transient Zoho failures with jittered exponential backoff within a deadline."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.errors import ZohoError
from engine.metrics import ZOHO_RETRIES
from engine.zoho.outcomes import RetryAction

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_RETRY_AFTER_SECONDS = 3600.0
"""Upper bound of any wait: a longer `Retry-After` from Zoho is cut to this, so the wait and
the `Retry-After` sent on to NSPS stay finite."""


class AttemptError(Exception):
    """One failed attempt: the error to raise and the outcome table's action for it."""

    def __init__(self, error: ZohoError, action: RetryAction) -> None:
        super().__init__(error.message)
        self.error = error
        self.action = action


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    """Attempts after the first one."""

    base_seconds: float = 0.5
    max_seconds: float = 30.0


def backoff_delay(policy: RetryPolicy, retry_number: int, random_fraction: float) -> float:
    """Return the full-jitter delay before retry `retry_number` (1-based), in seconds."""
    ceiling = min(policy.max_seconds, policy.base_seconds * 2 ** (retry_number - 1))
    return ceiling * random_fraction


def parse_retry_after(header: str | None) -> float | None:
    """Return a `Retry-After` header's seconds, cut to `MAX_RETRY_AFTER_SECONDS`.

    Returns `None` when the header is absent or is not a finite number of seconds (an HTTP
    date, `inf`, `nan`). A negative number counts as zero.
    """
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def is_retryable(action: RetryAction, *, idempotent: bool) -> bool:
    if action is RetryAction.RETRY:
        return True
    return action is RetryAction.RETRY_IF_IDEMPOTENT and idempotent


def call_with_retries(
    attempt: Callable[[], T],
    *,
    operation: str,
    idempotent: bool,
    deadline: float | None,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    random_fraction: Callable[[], float] = random.random,
) -> T:
    """Run `attempt` until it succeeds, fails for good, or the next wait would pass `deadline`.

    `deadline` is a `time.monotonic()` value. A transient error that is given up on is raised
    with `retry_after` set (at least one second), so the service can respond to NSPS with
    `Retry-After`. Errors that are not transient are raised at once.
    """
    retry_number = 0
    while True:
        try:
            return attempt()
        except AttemptError as failure:
            error = failure.error
            if not is_retryable(failure.action, idempotent=idempotent):
                raise error from failure.error.__cause__

            retry_number += 1
            delay = backoff_delay(policy, retry_number, random_fraction())
            if error.retry_after is not None and math.isfinite(error.retry_after):
                delay = max(delay, error.retry_after)
            delay = min(delay, MAX_RETRY_AFTER_SECONDS)
            out_of_retries = retry_number > policy.max_retries
            past_deadline = deadline is not None and clock() + delay > deadline
            if out_of_retries or past_deadline:
                error.retry_after = float(max(1, math.ceil(delay)))
                raise error from failure.error.__cause__

            logger.warning(
                "retrying Zoho call after a transient failure",
                extra={
                    "operation": operation,
                    "retry": retry_number,
                    "delay_seconds": round(delay, 3),
                    "error_code": error.code,
                    "reason": error.message,
                },
            )
            ZOHO_RETRIES.labels(operation=operation).inc()
            sleep(delay)
