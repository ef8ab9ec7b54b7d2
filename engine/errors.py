"""Error tree of the connector.

Every error the service returns to NSPS is a subclass of `ConnectorError`. Each class carries a
stable machine code, the NSPS error type and the HTTP status, so the HTTP layer turns any of them
into the NSPS `ErrorResponse` body in one place. The user-facing `message` never contains a
secret, a stack trace or a whole payload. NSPS retries failed events whatever their status, so
the last column tells whether a retry can help, not whether one happens.

| class                      | status | NSPS type            | same event can succeed later  |
|----------------------------|--------|----------------------|-------------------------------|
| AuthenticationError        | 401    | AUTHENTICATION_ERROR | no, the token must be fixed   |
| RouteNotFoundError         | 404    | VALIDATION_ERROR     | no                            |
| RecordNotFoundError        | 404    | VALIDATION_ERROR     | once the record exists        |
| EventNotFoundError         | 404    | VALIDATION_ERROR     | no                            |
| MethodNotAllowedError      | 405    | VALIDATION_ERROR     | no                            |
| PayloadTooLargeError       | 413    | VALIDATION_ERROR     | no                            |
| UnsupportedMediaTypeError  | 415    | VALIDATION_ERROR     | no                            |
| EventValidationError       | 422    | VALIDATION_ERROR     | no                            |
| NoActionPlanError          | 422    | VALIDATION_ERROR     | once the mappings plan it     |
| ZohoDataError              | 422    | VALIDATION_ERROR     | once the CRM field accepts it |
| RateLimitError             | 429    | RATE_LIMIT_ERROR     | yes                           |
| ZohoRateLimitError         | 429    | RATE_LIMIT_ERROR     | yes                           |
| ZohoAuthError              | 500    | SERVICE_ERROR        | once the credential is fixed  |
| ZohoRequestError           | 500    | SERVICE_ERROR        | once the CRM setup is fixed   |
| MappingRuntimeError        | 500    | SERVICE_ERROR        | once the mapping is fixed     |
| InternalError              | 500    | INTERNAL_ERROR       | maybe                         |
| ZohoUnavailableError       | 503    | CONNECTION_ERROR     | yes                           |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class ErrorType(StrEnum):
    """The `type` values of the NSPS `ErrorResponse` body."""

    VALIDATION = "VALIDATION_ERROR"
    AUTHENTICATION = "AUTHENTICATION_ERROR"
    SERVICE = "SERVICE_ERROR"
    CONNECTION = "CONNECTION_ERROR"
    RATE_LIMIT = "RATE_LIMIT_ERROR"
    INTERNAL = "INTERNAL_ERROR"


@dataclass(frozen=True)
class ErrorDetail:
    """One problem inside a request, located by its path into the event."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class ConnectorError(Exception):
    """Root of every error that the service turns into an NSPS error response."""

    status: ClassVar[int] = 500
    error_type: ClassVar[ErrorType] = ErrorType.INTERNAL
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str,
        *,
        details: Iterable[ErrorDetail] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: Sequence[ErrorDetail] = tuple(details)
        self.retry_after = retry_after

    def to_body(self) -> dict[str, Any]:
        """Return the NSPS `ErrorResponse` body for this error."""
        body: dict[str, Any] = {
            "message": self.message,
            "error": self.title,
            "type": str(self.error_type),
            "code": self.code,
        }
        if self.details:
            body["details"] = [detail.as_dict() for detail in self.details]
        return body


class AuthenticationError(ConnectorError):
    status = 401
    error_type = ErrorType.AUTHENTICATION
    code = "unauthorized"
    title = "Unauthorized"


class RouteNotFoundError(ConnectorError):
    status = 404
    error_type = ErrorType.VALIDATION
    code = "not_found"
    title = "Not found"


class MethodNotAllowedError(ConnectorError):
    status = 405
    error_type = ErrorType.VALIDATION
    code = "method_not_allowed"
    title = "Method not allowed"

    def __init__(self, message: str, *, allowed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.allowed = tuple(allowed)


class PayloadTooLargeError(ConnectorError):
    status = 413
    error_type = ErrorType.VALIDATION
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaTypeError(ConnectorError):
    status = 415
    error_type = ErrorType.VALIDATION
    code = "unsupported_media_type"
    title = "Unsupported media type"


class EventValidationError(ConnectorError):
    """The body is not JSON, or the event breaks the event schema."""

    status = 422
    error_type = ErrorType.VALIDATION
    code = "invalid_event"
    title = "Invalid event"


class NoActionPlanError(ConnectorError):
    """The mappings define no action plan for the event type and do not ignore it."""

    status = 422
    error_type = ErrorType.VALIDATION
    code = "no_action_plan"
    title = "No action plan for event type"


class ZohoError(ConnectorError):
    """Base of every failure that comes from Zoho CRM or the way to it."""


class ZohoDataError(ZohoError):
    """Zoho rejected a value of the record itself (INVALID_DATA, MANDATORY_NOT_FOUND, ...).

    `details` names the Zoho field and, in `loc`, the event path the value came from.
    """

    status = 422
    error_type = ErrorType.VALIDATION
    code = "zoho_rejected_data"
    title = "Zoho CRM rejected the data"


class RateLimitError(ConnectorError):
    """The connector's own concurrency or rate limit is reached."""

    status = 429
    error_type = ErrorType.RATE_LIMIT
    code = "rate_limited"
    title = "Too many requests"


class ZohoRateLimitError(ZohoError):
    status = 429
    error_type = ErrorType.RATE_LIMIT
    code = "zoho_rate_limited"
    title = "Zoho CRM rate limit reached"


class ZohoAuthError(ZohoError):
    """Zoho refused the OAuth client, the refresh token or its scopes."""

    status = 500
    error_type = ErrorType.SERVICE
    code = "zoho_auth_failed"
    title = "Zoho CRM authentication failed"


class ZohoRequestError(ZohoError):
    """Zoho rejected the request itself (bad URL, unknown module, ...): a setup problem."""

    status = 500
    error_type = ErrorType.SERVICE
    code = "zoho_request_rejected"
    title = "Zoho CRM rejected the request"


class MappingRuntimeError(ConnectorError):
    """An expression in the mappings failed for a reason that is not the event's data.

    The sandbox stopped it (SecurityError), or another template error shows a bug in the
    mapping. Every event that reaches the expression fails the same way until it is fixed.
    """

    status = 500
    error_type = ErrorType.SERVICE
    code = "mapping_failed"
    title = "Mapping failed"


class InternalError(ConnectorError):
    status = 500
    error_type = ErrorType.INTERNAL
    code = "internal_error"
    title = "Internal error"


class ZohoUnavailableError(ZohoError):
    """Zoho is unreachable, timed out or returned a 5xx status."""

    status = 503
    error_type = ErrorType.CONNECTION
    code = "zoho_unavailable"
    title = "Zoho CRM unavailable"


class RecordNotFoundError(ConnectorError):
    """A step that requires an existing record found none (`when_absent: fail`)."""

    status = 404
    error_type = ErrorType.VALIDATION
    code = "record_not_found"
    title = "Record not found"


class EventNotFoundError(ConnectorError):
    """A replay names an event id that is not in the journal, or is there without its body."""

    status = 404
    error_type = ErrorType.VALIDATION
    code = "event_not_found"
    title = "Event not found"
