"""Zoho CRM v8 records client: search, get, insert, update and upsert over pooled HTTP."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from engine.errors import ZohoAuthError, ZohoError, ZohoRateLimitError, ZohoRequestError
from engine.metrics import ZOHO_CALL_SECONDS, ZOHO_CALLS
from engine.zoho.auth import AccessToken, TokenManager, request_timeout, transport_failure
from engine.zoho.criteria import equals_criteria, values_equal
from engine.zoho.outcomes import RetryAction, Transport, classify
from engine.zoho.retry import AttemptError, RetryPolicy, call_with_retries, parse_retry_after
from engine.zoho.settings import ZohoSettings

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 100
SEARCH_PAGE_SIZE = 200
MAX_SEARCH_PAGES = 10
"""Zoho serves about 2,000 search results (10 pages of 200); more need COQL."""

SINGLE_ATTEMPT = RetryPolicy(max_retries=0)

READY_CACHE_SECONDS = 300.0
"""How long `check_ready` reuses its last API probe: each probe costs one Zoho API credit."""


@dataclass(frozen=True)
class RecordResult:
    """Zoho's result for one record of an insert, update or upsert, in request order."""

    code: str
    status: str
    message: str
    id: str | None = None
    """The record id as Zoho's 19-digit string, from `details.id`."""

    action: str | None = None
    """`insert` or `update`, for upserts only."""

    duplicate_field: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def api_name(self) -> str | None:
        """The Zoho field an error is about, when Zoho names one."""
        name = self.details.get("api_name")
        return str(name) if name is not None else None

    @classmethod
    def from_element(cls, element: object, *, operation: str, module: str) -> RecordResult:
        """Read one element of a write response's `data` list.

        Raises `ZohoRequestError` when the element is not an object, or when it reports
        success without a record id in `details.id`, because the runner links and updates
        records by that id.
        """
        where = f"Zoho CRM {operation} on {module}"
        if not isinstance(element, Mapping):
            raise ZohoRequestError(
                f"{where} returned a result that is not a JSON object "
                f"({type(element).__name__}); check ZOHO_CRM_API_DOMAIN"
            )
        details = element.get("details")
        if not isinstance(details, Mapping):
            details = {}
        status = str(element.get("status", ""))
        record_id = details.get("id")
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            record_id = str(record_id)
        if not (isinstance(record_id, str) and record_id.isdigit()):
            if status == "success":
                raise ZohoRequestError(
                    f"{where} reported success without a record id of digits in details.id; "
                    "check ZOHO_CRM_API_DOMAIN"
                )
            record_id = None
        action = element.get("action")
        duplicate_field = element.get("duplicate_field")
        return cls(
            code=str(element.get("code", "")),
            status=status,
            message=str(element.get("message", "")),
            id=record_id,
            action=action if isinstance(action, str) else None,
            duplicate_field=duplicate_field if isinstance(duplicate_field, str) else None,
            details=dict(details),
        )


class ZohoClient:
    """Thread-safe client of one Zoho CRM org.

    Every method takes an optional `deadline` (a `time.monotonic()` value): transient failures
    are retried until the next wait would pass it, then raised with `retry_after` set. Waiting
    for a call slot or for the token lock, and each request's connect and read timeouts, end at
    the deadline too.
    """

    def __init__(
        self,
        settings: ZohoSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`wall_clock` returns Unix time in seconds and decides when a cached token expires."""
        self.settings = settings
        self._owns_session = session is None
        self._session = session if session is not None else _pooled_session(settings)
        self._tokens = TokenManager(settings, self._session, clock=wall_clock)
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._policy = RetryPolicy(
            max_retries=settings.max_retries,
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
        )
        self._sleep = sleep
        # Reentrant, because a failed probe inside `check_ready` drops the cached result.
        self._ready_lock = threading.RLock()
        self._ready_cache: tuple[float, dict[str, Any]] | None = None

    @property
    def api_domain(self) -> str:
        """The API domain calls go to: the one of the latest token response."""
        return self._tokens.api_domain

    # Records API

    def search_exact(
        self, module: str, field: str, value: object, *, deadline: float | None = None
    ) -> list[dict[str, Any]]:
        """Return the records whose `field` is exactly `value`; `[]` when none match.

        Zoho's search index lags writes by up to about a minute, so a record written moments
        ago may be missing.
        """
        criteria = equals_criteria(field, value)
        matches: list[dict[str, Any]] = []
        for page in range(1, MAX_SEARCH_PAGES + 1):
            params = {"criteria": criteria, "page": page, "per_page": SEARCH_PAGE_SIZE}
            body = self._call(
                "search",
                "GET",
                f"{module}/search",
                module=module,
                params=params,
                idempotent=True,
                deadline=deadline,
            )
            if body is None:
                break
            records = _record_list(body, "search", module)
            matches.extend(record for record in records if values_equal(record.get(field), value))
            info = body.get("info")
            if not (isinstance(info, dict) and info.get("more_records")):
                break
        return matches

    def get(
        self, module: str, record_id: str, *, deadline: float | None = None
    ) -> dict[str, Any] | None:
        """Return the record with this id, or `None` when Zoho has none (HTTP 204)."""
        _check_record_id(record_id)
        body = self._call(
            "get",
            "GET",
            f"{module}/{record_id}",
            module=module,
            idempotent=True,
            deadline=deadline,
        )
        if body is None:
            return None
        records = _record_list(body, "get", module)
        if not records:
            return None
        return records[0]

    def insert(
        self, module: str, records: Sequence[Mapping[str, Any]], *, deadline: float | None = None
    ) -> list[RecordResult]:
        """Insert up to 100 records; return one result per record, in order.

        NOTE: a plain insert is not idempotent, so it is retried only after 429 or a refused
        connection. After a timeout, a reset or a 5xx, Zoho may have created the record already.
        """
        body = self._write_body(records)
        return self._write(
            "insert",
            "POST",
            module,
            module,
            body,
            idempotent=False,
            deadline=deadline,
            count=len(records),
        )

    def update(
        self, module: str, records: Sequence[Mapping[str, Any]], *, deadline: float | None = None
    ) -> list[RecordResult]:
        """Update up to 100 records, each carrying its `id`; return one result per record."""
        for record in records:
            _check_record_id(record.get("id"))
        body = self._write_body(records)
        return self._write(
            "update",
            "PUT",
            module,
            module,
            body,
            idempotent=True,
            deadline=deadline,
            count=len(records),
        )

    def upsert(
        self,
        module: str,
        records: Sequence[Mapping[str, Any]],
        duplicate_check_fields: Sequence[str],
        *,
        deadline: float | None = None,
    ) -> list[RecordResult]:
        """Insert or update up to 100 records matched on `duplicate_check_fields`, in order.

        Each result's `action` is `insert` or `update`. The check fields must be unique fields
        of the module, and Zoho tries them in the order given.
        """
        if not duplicate_check_fields:
            raise ValueError("upsert needs at least one duplicate check field")
        body = self._write_body(records)
        body["duplicate_check_fields"] = list(duplicate_check_fields)
        return self._write(
            "upsert",
            "POST",
            module,
            f"{module}/upsert",
            body,
            idempotent=True,
            deadline=deadline,
            count=len(records),
        )

    # Readiness and lifecycle

    def check_ready(self, module: str | None, key_field: str | None) -> dict[str, Any]:
        """Report whether an access token is obtainable and the records API responds.

        The API probe is one search on `module` by `key_field`, normally a module and key field
        that the mappings use, so it needs the scopes the connector needs. It costs one API
        credit and is reused for five minutes. With `module=None` only the token is checked.
        The token check runs on every call, but it refreshes only when the cached token is about
        to expire.
        """
        report: dict[str, Any] = {
            "ready": False,
            "token": "failed",
            "api": "unchecked",
            "api_domain": self.api_domain,
        }
        try:
            call_with_retries(
                self._tokens.current,
                operation="token",
                idempotent=True,
                deadline=time.monotonic(),
                policy=self._policy,
                sleep=self._sleep,
            )
        except ZohoError as exc:
            if isinstance(exc, ZohoAuthError):
                self._forget_readiness()
            report["error"] = exc.message
            return report
        report["token"] = "ok"  # noqa: S105 (a status word, not a secret)
        report["api_domain"] = self.api_domain
        if module is None or key_field is None:
            report["ready"] = True
            return report

        with self._ready_lock:
            now = time.monotonic()
            if self._ready_cache is not None and now - self._ready_cache[0] < READY_CACHE_SECONDS:
                cached = dict(self._ready_cache[1])
                cached["api_domain"] = self.api_domain
                return cached
            try:
                self._probe(module, key_field)
            except ZohoError as exc:
                report["api"] = "failed"
                report["error"] = exc.message
                return report
            report["api"] = "ok"
            report["ready"] = True
            report["checked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            self._ready_cache = (now, dict(report))
        return report

    def _forget_readiness(self) -> None:
        """Drop the cached API probe, so the next `check_ready` probes Zoho again.

        Called when a token refresh fails or Zoho rejects a call with 401 or 403, because the
        cached probe result is then out of date.
        """
        with self._ready_lock:
            self._ready_cache = None

    def _probe(self, module: str, field: str) -> None:
        """Send one search with no retry, so a readiness check takes at most one call."""
        params = {"criteria": equals_criteria(field, "readiness probe"), "page": 1, "per_page": 1}
        self._call(
            "search",
            "GET",
            f"{module}/search",
            module=module,
            params=params,
            idempotent=True,
            deadline=None,
            policy=SINGLE_ATTEMPT,
        )

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> ZohoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Internals

    def _write_body(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not records:
            raise ValueError("a write needs at least one record")
        if len(records) > MAX_RECORDS_PER_CALL:
            raise ValueError(
                f"Zoho accepts at most {MAX_RECORDS_PER_CALL} records per call, got {len(records)}"
            )
        body: dict[str, Any] = {"data": [dict(record) for record in records]}
        if self.settings.trigger is not None:
            body["trigger"] = list(self.settings.trigger)
        return body

    def _write(
        self,
        operation: str,
        method: str,
        module: str,
        path: str,
        body: dict[str, Any],
        *,
        idempotent: bool,
        deadline: float | None,
        count: int,
    ) -> list[RecordResult]:
        response = self._call(
            operation,
            method,
            path,
            module=module,
            json_body=body,
            idempotent=idempotent,
            deadline=deadline,
            per_record=True,
        )
        if response is None:
            raise ZohoRequestError(f"Zoho CRM {operation} on {module} returned HTTP 204")
        elements = _data_list(response, operation, module)
        if len(elements) != count:
            code = _error_code(response)
            raise ZohoRequestError(
                f"Zoho CRM {operation} on {module} returned {len(elements)} results "
                f"for {count} records" + (f", the first with code {code}" if code else "")
            )
        return [
            RecordResult.from_element(element, operation=operation, module=module)
            for element in elements
        ]

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        module: str,
        idempotent: bool,
        deadline: float | None,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        per_record: bool = False,
        policy: RetryPolicy | None = None,
    ) -> dict[str, Any] | None:
        """Send one API request with retries; return its JSON body, or `None` for HTTP 204."""

        def attempt() -> dict[str, Any] | None:
            token = self._tokens.current(deadline=deadline)
            status, body, retry_after = self._send(
                operation, method, path, module, token, params, json_body, deadline
            )
            code = _error_code(body)
            if status == 401 and classify(401, code).action is RetryAction.REFRESH_TOKEN:
                token = self._tokens.replace_rejected(token, deadline=deadline)
                status, body, retry_after = self._send(
                    operation, method, path, module, token, params, json_body, deadline
                )
                code = _error_code(body)
            return self._interpret(
                operation, module, status, body, code, retry_after, per_record=per_record
            )

        try:
            return call_with_retries(
                attempt,
                operation=operation,
                idempotent=idempotent,
                deadline=deadline,
                policy=policy or self._policy,
                sleep=self._sleep,
            )
        except ZohoAuthError:
            self._forget_readiness()
            raise

    def _send(
        self,
        operation: str,
        method: str,
        path: str,
        module: str,
        token: AccessToken,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        deadline: float | None,
    ) -> tuple[int, dict[str, Any] | None, float | None]:
        url = f"{token.api_domain}/crm/{self.settings.api_version}/{path}"
        headers = {"Authorization": f"Zoho-oauthtoken {token.value}"}
        self._take_slot(operation, module, deadline)
        started = time.monotonic()
        try:
            timeout = request_timeout(self.settings, deadline, f"Zoho CRM {operation} on {module}")
            response = self._session.request(
                method, url, params=params, json=json_body, headers=headers, timeout=timeout
            )
            content = response.content
        except requests.RequestException as exc:
            transport = transport_failure(exc)
            self._record_call(operation, module, str(transport), started)
            rule = classify(None, None, transport)
            raise AttemptError(
                rule.error(f"Zoho CRM {operation} on {module} failed: {rule.hint}"), rule.action
            ) from exc
        finally:
            self._slots.release()
        self._record_call(operation, module, str(response.status_code), started)

        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if response.status_code == 204 or not content.strip():
            return response.status_code, None, retry_after
        try:
            body = response.json()
        except ValueError as exc:
            rule = classify(None, None, Transport.INVALID_RESPONSE)
            raise AttemptError(
                rule.error(
                    f"Zoho CRM {operation} on {module} returned HTTP {response.status_code} "
                    f"with a body that is not JSON: {rule.hint}"
                ),
                rule.action,
            ) from exc
        if not isinstance(body, dict):
            body = {"data": body} if isinstance(body, list) else {}
        return response.status_code, body, retry_after

    def _take_slot(self, operation: str, module: str, deadline: float | None) -> None:
        """Wait for one of the `max_concurrency` call slots, at most until `deadline`."""
        if deadline is None:
            self._slots.acquire()
            return
        if self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return
        # Nothing was sent, so the call may be retried; past the deadline it is raised.
        raise AttemptError(
            ZohoRateLimitError(
                f"Zoho CRM {operation} on {module} waited for one of the "
                f"{self.settings.max_concurrency} concurrent call slots until the event's time "
                "budget ran out; retry later, or raise ZOHO_CRM_MAX_CONCURRENCY within the "
                "org's limit"
            ),
            RetryAction.RETRY,
        )

    def _record_call(self, operation: str, module: str, status: str, started: float) -> None:
        elapsed = time.monotonic() - started
        ZOHO_CALLS.labels(operation=operation, status=status).inc()
        ZOHO_CALL_SECONDS.labels(operation=operation).observe(elapsed)
        logger.debug(
            "Zoho call",
            extra={
                "operation": operation,
                "zoho_module": module,
                "status": status,
                "duration_seconds": round(elapsed, 3),
            },
        )

    def _interpret(
        self,
        operation: str,
        module: str,
        status: int,
        body: dict[str, Any] | None,
        code: str | None,
        retry_after: float | None,
        *,
        per_record: bool,
    ) -> dict[str, Any] | None:
        if 200 <= status < 300:
            return body
        # A write batch where records failed comes back as 400 with one result per record.
        if (
            per_record
            and status == 400
            and body is not None
            and "code" not in body
            and isinstance(body.get("data"), list)
        ):
            return body

        rule = classify(status, code)
        zoho_message = body.get("message") if body else None
        if zoho_message is None and body and isinstance(body.get("data"), list) and body["data"]:
            first = body["data"][0]
            zoho_message = first.get("message") if isinstance(first, dict) else None
        described = f"HTTP {status}" + (f" {code}" if code else "")
        if zoho_message:
            described += f" ({zoho_message})"
        action = rule.action
        if action is RetryAction.REFRESH_TOKEN:
            # The request already failed once more with a freshly refreshed token.
            action = RetryAction.FAIL
        error = rule.error(
            f"Zoho CRM {operation} on {module} failed with {described}: {rule.hint}",
            retry_after=retry_after,
        )
        raise AttemptError(error, action)


def _pooled_session(settings: ZohoSettings) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=2, pool_maxsize=max(settings.max_concurrency, 1) + 1, max_retries=0
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _error_code(body: Mapping[str, Any] | None) -> str | None:
    """Read the request-level `code`, bare or (as some OAS examples show) inside `data[0]`."""
    if not body:
        return None
    if isinstance(body.get("code"), str):
        return str(body["code"])
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        code = data[0].get("code")
        return str(code) if isinstance(code, str) else None
    return None


def _data_list(body: Mapping[str, Any], operation: str, module: str) -> list[Any]:
    data = body.get("data")
    if not isinstance(data, list):
        raise ZohoRequestError(
            f"Zoho CRM {operation} on {module} returned a body without a `data` list"
        )
    return data


def _record_list(body: Mapping[str, Any], operation: str, module: str) -> list[dict[str, Any]]:
    """Return the records of a read response; raise `ZohoRequestError` when one is not an object."""
    records = _data_list(body, operation, module)
    for record in records:
        if not isinstance(record, dict):
            raise ZohoRequestError(
                f"Zoho CRM {operation} on {module} returned a record that is not a JSON object "
                f"({type(record).__name__}); check ZOHO_CRM_API_DOMAIN"
            )
    return records


def _check_record_id(record_id: object) -> None:
    # Zoho ids are 19 digits, beyond a double's exact range: they must stay strings.
    if not isinstance(record_id, str) or not record_id.isdigit():
        raise ValueError(f"a Zoho record id must be a string of digits, got {record_id!r}")
