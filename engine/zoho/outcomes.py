"""Actions for each Zoho response or transport failure: one literal table, tested row by row.

A row matches an HTTP status and a Zoho error `code` (or a transport failure where no status
arrived). `code=None` matches every code of that status; `status=None` with a `transport` name
matches a failure before any response. The first matching row wins, so specific rows come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.errors import (
    ZohoAuthError,
    ZohoDataError,
    ZohoError,
    ZohoRateLimitError,
    ZohoRequestError,
    ZohoUnavailableError,
)


class RetryAction(StrEnum):
    """Next step of the client after a failed attempt."""

    RETRY = "retry"
    """Zoho certainly did not act on the request, so any operation may be sent again."""

    RETRY_IF_IDEMPOTENT = "retry_if_idempotent"
    """Zoho may have acted on the request: only searches, reads, updates and upserts are sent
    again, never a plain insert (a second insert would create a duplicate record)."""

    REFRESH_TOKEN = "refresh_token"  # noqa: S105 (an action name, not a secret)
    """Refresh the access token, then send the request once more."""

    FAIL = "fail"


class Transport(StrEnum):
    """Failures where no HTTP response arrived."""

    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    CONNECTION_ERROR = "connection_error"
    TIMEOUT = "timeout"
    INVALID_RESPONSE = "invalid_response"
    """A response arrived but its body is not the JSON Zoho sends."""


@dataclass(frozen=True)
class OutcomeRule:
    status: int | None
    code: str | None
    action: RetryAction
    error: type[ZohoError]
    hint: str
    """Advice for the operator, appended to the error message."""

    transport: Transport | None = None

    def matches(self, status: int | None, code: str | None, transport: Transport | None) -> bool:
        if transport is not None or self.transport is not None:
            return self.transport == transport
        if self.status != status:
            return False
        return self.code is None or self.code == code


SCOPES_HINT = (
    "give the OAuth client the scopes ZohoCRM.modules.ALL (or ZohoCRM.modules.<module>.ALL per "
    "module), ZohoSearch.securesearch.READ and ZohoCRM.settings.fields.READ, then generate a new "
    "ZOHO_CRM_REFRESH_TOKEN"
)
DATA_CENTER_HINT = (
    "check that ZOHO_CRM_ACCOUNTS_URL and ZOHO_CRM_API_DOMAIN belong to the data center of the "
    "Zoho org"
)
MAPPING_HINT = "check the module and field API names in the mappings against the Zoho org"

RETRY = RetryAction.RETRY
RETRY_IF_IDEMPOTENT = RetryAction.RETRY_IF_IDEMPOTENT
REFRESH = RetryAction.REFRESH_TOKEN
FAIL = RetryAction.FAIL

OUTCOMES: tuple[OutcomeRule, ...] = (
    # Values of the record itself: the event must change, so NSPS must not retry it.
    OutcomeRule(400, "INVALID_DATA", FAIL, ZohoDataError, "fix the value or the field mapping"),
    OutcomeRule(400, "MANDATORY_NOT_FOUND", FAIL, ZohoDataError, "map a value to the field"),
    OutcomeRule(400, "DUPLICATE_DATA", FAIL, ZohoDataError, "the value must be unique in Zoho"),
    OutcomeRule(400, "EXPECTED_FIELD_MISSING", FAIL, ZohoDataError, "map the expected fields"),
    OutcomeRule(400, "DEPENDENT_FIELD_MISSING", FAIL, ZohoDataError, "map the dependent field"),
    OutcomeRule(400, "PATTERN_NOT_MATCHED", FAIL, ZohoDataError, "fix the value's format"),
    OutcomeRule(400, "RECORD_LOCKED", FAIL, ZohoDataError, "unlock the record in Zoho"),
    OutcomeRule(400, "RECORD_IN_BLUEPRINT", FAIL, ZohoDataError, "the record is in a blueprint"),
    OutcomeRule(400, "CANNOT_PERFORM_ACTION", FAIL, ZohoDataError, "the record's state forbids it"),
    # The request itself is wrong: a setup problem of the mappings or the URLs.
    OutcomeRule(400, "INVALID_MODULE", FAIL, ZohoRequestError, MAPPING_HINT),
    OutcomeRule(400, "INVALID_QUERY", FAIL, ZohoRequestError, MAPPING_HINT),
    OutcomeRule(400, "INVALID_HOST", FAIL, ZohoRequestError, DATA_CENTER_HINT),
    OutcomeRule(400, "LIMIT_EXCEEDED", FAIL, ZohoRequestError, "send at most 100 records"),
    OutcomeRule(400, None, FAIL, ZohoRequestError, MAPPING_HINT),
    # Authentication: one refresh, because a sibling process may have pushed our token out of
    # Zoho's set of active tokens; a second INVALID_TOKEN fails.
    OutcomeRule(401, "INVALID_TOKEN", REFRESH, ZohoAuthError, DATA_CENTER_HINT),
    OutcomeRule(401, "AUTHENTICATION_FAILURE", REFRESH, ZohoAuthError, DATA_CENTER_HINT),
    OutcomeRule(401, "OAUTH_SCOPE_MISMATCH", FAIL, ZohoAuthError, SCOPES_HINT),
    OutcomeRule(401, None, FAIL, ZohoAuthError, DATA_CENTER_HINT),
    OutcomeRule(
        403,
        "NO_PERMISSION",
        FAIL,
        ZohoAuthError,
        "give the Zoho user of the refresh token a profile that may write the module",
    ),
    OutcomeRule(403, None, FAIL, ZohoRequestError, "the Zoho edition or profile lacks a feature"),
    OutcomeRule(404, None, FAIL, ZohoRequestError, "check ZOHO_CRM_API_DOMAIN and the module"),
    OutcomeRule(405, None, FAIL, ZohoRequestError, "the client used a wrong HTTP method"),
    # Limits and Zoho's own failures: NSPS retries the event later.
    OutcomeRule(429, None, RETRY, ZohoRateLimitError, "Zoho's concurrency or daily API limit"),
    OutcomeRule(500, None, RETRY_IF_IDEMPOTENT, ZohoUnavailableError, "Zoho failed internally"),
    OutcomeRule(502, None, RETRY_IF_IDEMPOTENT, ZohoUnavailableError, "Zoho's gateway failed"),
    OutcomeRule(503, None, RETRY_IF_IDEMPOTENT, ZohoUnavailableError, "Zoho is unavailable"),
    OutcomeRule(504, None, RETRY_IF_IDEMPOTENT, ZohoUnavailableError, "Zoho's gateway timed out"),
    # No response: a refused connection never reached Zoho, the others may have.
    OutcomeRule(
        None,
        None,
        RETRY,
        ZohoUnavailableError,
        "Zoho refused the connection",
        Transport.CONNECTION_REFUSED,
    ),
    OutcomeRule(
        None,
        None,
        RETRY_IF_IDEMPOTENT,
        ZohoUnavailableError,
        "the connection was reset",
        Transport.CONNECTION_RESET,
    ),
    OutcomeRule(
        None,
        None,
        RETRY_IF_IDEMPOTENT,
        ZohoUnavailableError,
        "the connection failed",
        Transport.CONNECTION_ERROR,
    ),
    OutcomeRule(
        None,
        None,
        RETRY_IF_IDEMPOTENT,
        ZohoUnavailableError,
        "the call timed out",
        Transport.TIMEOUT,
    ),
    OutcomeRule(
        None,
        None,
        RETRY_IF_IDEMPOTENT,
        ZohoUnavailableError,
        "the response was not Zoho's JSON",
        Transport.INVALID_RESPONSE,
    ),
)

# Statuses that no row names: 5xx behaves like 500, any other 4xx like a request problem.
FALLBACK_SERVER_ERROR = OutcomeRule(
    500, None, RETRY_IF_IDEMPOTENT, ZohoUnavailableError, "Zoho returned a server error"
)
FALLBACK_CLIENT_ERROR = OutcomeRule(400, None, FAIL, ZohoRequestError, "Zoho rejected the request")


def classify(
    status: int | None, code: str | None = None, transport: Transport | None = None
) -> OutcomeRule:
    """Return the outcome row for a failed response or transport failure."""
    for rule in OUTCOMES:
        if rule.matches(status, code, transport):
            return rule
    if status is not None and status >= 500:
        return FALLBACK_SERVER_ERROR
    return FALLBACK_CLIENT_ERROR
