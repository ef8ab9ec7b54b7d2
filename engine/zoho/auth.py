"""OAuth 2.0 access tokens for Zoho CRM: refresh-token grant, shared cache, single flight.

One refresh runs at a time: a thread lock serializes the threads of a process, and a file lock
next to the token file serializes the processes that share it. The holder of the lock re-reads
the token file first, so a token another process just fetched is reused instead of refreshed
again. Zoho allows 10 access tokens per refresh token in 10 minutes and keeps at most
15 active, so refreshing per worker would soon lock the deployment out.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from filelock import FileLock
from filelock import Timeout as FileLockTimeout
from oauthlib.oauth2 import WebApplicationClient

from engine.errors import (
    ZohoAuthError,
    ZohoRateLimitError,
    ZohoRequestError,
    ZohoUnavailableError,
)
from engine.metrics import ZOHO_CALL_SECONDS, ZOHO_CALLS
from engine.zoho.outcomes import RetryAction, Transport, classify
from engine.zoho.retry import AttemptError, parse_retry_after
from engine.zoho.settings import ZohoSettings

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME_SECONDS = 3600.0
"""Zoho's documented access-token lifetime, assumed when a token response omits `expires_in`."""

THROTTLE_RETRY_AFTER_SECONDS = 60.0
"""Wait suggested to NSPS after Zoho's token throttle: it lifts within a 10-minute window."""


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float
    """Unix time (seconds) when Zoho stops accepting the token; wall clock because processes
    share it through the token file."""

    api_domain: str


def token_error(error_code: str, description: str | None) -> AttemptError:
    """Turn an `error` value from the token endpoint into the error that names what to fix."""
    if error_code == "invalid_client":
        return AttemptError(
            ZohoAuthError(
                "Zoho rejected the OAuth client: check ZOHO_CRM_CLIENT_ID and "
                "ZOHO_CRM_CLIENT_SECRET, and that ZOHO_CRM_ACCOUNTS_URL is the accounts server "
                "of the org's data center"
            ),
            RetryAction.FAIL,
        )
    if error_code == "invalid_code":
        return AttemptError(
            ZohoAuthError(
                "Zoho rejected the refresh token: ZOHO_CRM_REFRESH_TOKEN is wrong or revoked, "
                "generate a new one for this OAuth client and data center"
            ),
            RetryAction.FAIL,
        )
    if error_code.lower().replace("_", " ") == "access denied":
        return _throttled(None)
    return AttemptError(
        ZohoAuthError(
            f"Zoho's token endpoint returned error {error_code!r}"
            + (f" ({description})" if description else "")
            + ": check ZOHO_CRM_CLIENT_ID, ZOHO_CRM_CLIENT_SECRET and ZOHO_CRM_REFRESH_TOKEN"
        ),
        RetryAction.FAIL,
    )


def _throttled(retry_after_header: str | None) -> AttemptError:
    """Return the error for Zoho's token throttle, with `retry_after` from `Retry-After`."""
    retry_after = parse_retry_after(retry_after_header)
    retry_after = THROTTLE_RETRY_AFTER_SECONDS if retry_after is None else max(1.0, retry_after)
    # FAIL, not RETRY: the throttle lifts within minutes, far beyond an event's time budget.
    return AttemptError(
        ZohoRateLimitError(
            "Zoho rejected a new access token because too many were requested with this "
            "refresh token (at most 10 in 10 minutes); retry later",
            retry_after=retry_after,
        ),
        RetryAction.FAIL,
    )


def _is_throttle_text(text: str) -> bool:
    """Tell whether a token-endpoint body that is not JSON is Zoho's "Access Denied" page."""
    # NOTE: the throttle's exact status and body are unconfirmed: the documented body is JSON
    # with `"error": "Access Denied"`, and a proxy may return the same words as HTML.
    stripped = text.lstrip()
    return not stripped.startswith("{") and "access denied" in stripped[:2000].lower()


def api_domain_problem(api_domain: str, *, allow_http: bool) -> str | None:
    """Return why `api_domain` is not a usable API base URL, or `None` when it is.

    Only `https://host[:port]` passes, or `http://` when `allow_http` is set for a local
    emulator. A path, query, fragment or user name would change where the calls and the
    access token go.
    """
    try:
        parts = urlsplit(api_domain)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return "is not a URL"
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        return "is not an https URL" if not allow_http else "is not an http or https URL"
    if not parts.hostname or any(char.isspace() for char in api_domain):
        return "has no valid host name"
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        return "has more than a scheme, host and port"
    return None


def parse_token_response(
    body: dict[str, Any], *, now: float, previous_api_domain: str, allow_http: bool = False
) -> AccessToken:
    """Read a token-endpoint body, which carries errors in an `error` key even on HTTP 200.

    An `api_domain` that is not an https URL is rejected (`http` too when `allow_http` is set),
    so that no token is stored with it.
    """
    error_code = body.get("error")
    if error_code:
        raise token_error(str(error_code), body.get("error_description"))
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise AttemptError(
            ZohoAuthError("Zoho's token endpoint returned no access_token and no error"),
            RetryAction.FAIL,
        )

    lifetime = _token_lifetime(body)

    # A refresh that omits api_domain keeps the one from before, never the default US host.
    returned_domain = body.get("api_domain")
    if not returned_domain:
        api_domain = previous_api_domain.rstrip("/")
    else:
        api_domain = str(returned_domain).rstrip("/")
        problem = api_domain_problem(api_domain, allow_http=allow_http)
        if problem is not None:
            raise AttemptError(
                ZohoAuthError(
                    f"Zoho's token endpoint returned an api_domain that {problem} "
                    f"({_shorten(api_domain)}), so the token was discarded: check that "
                    "ZOHO_CRM_ACCOUNTS_URL is Zoho's accounts server"
                ),
                RetryAction.FAIL,
            )
    return AccessToken(value=access_token, expires_at=now + lifetime, api_domain=api_domain)


def _token_lifetime(body: dict[str, Any]) -> float:
    """Return the token lifetime in seconds; raise `AttemptError` when it is not a positive number.

    A lifetime in another shape means the server is not the Zoho accounts server the client
    expects. So it is a setup problem (500), not a transient failure, and it is not retried,
    because a retry would spend one of the 10 tokens Zoho issues per 10 minutes.
    """
    # The legacy shape carries seconds in `expires_in_sec` and milliseconds in `expires_in`.
    if "expires_in_sec" in body:
        name = "expires_in_sec"
    elif "expires_in" in body:
        name = "expires_in"
    else:
        return DEFAULT_LIFETIME_SECONDS
    value = body[name]
    lifetime = math.nan
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            lifetime = float(value)
        except ValueError:
            pass
    if not (math.isfinite(lifetime) and lifetime > 0):
        raise AttemptError(
            ZohoRequestError(
                f"Zoho's token endpoint returned {name} {_shorten(str(value))}, which is not a "
                "positive number of seconds: check that ZOHO_CRM_ACCOUNTS_URL is Zoho's "
                "accounts server"
            ),
            RetryAction.FAIL,
        )
    return lifetime


class TokenManager:
    """Access tokens for one OAuth client, refreshed ahead of expiry and shared across processes.

    Methods raise `AttemptError`, so the client's retry loop decides what to retry.
    """

    def __init__(
        self,
        settings: ZohoSettings,
        session: requests.Session,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._session = session
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._rejected_value: str | None = None
        """The latest access token Zoho rejected, never reused from the token file."""
        self._api_domain = settings.api_domain.rstrip("/")
        # Plain http is accepted only when the accounts server is itself http, as the emulator is.
        self._allow_http = settings.accounts_url.lower().startswith("http://")
        self._oauth_client = WebApplicationClient(settings.client_id)
        # Another process holds the lock for at most one token request.
        lock_timeout = settings.connect_timeout_seconds + settings.timeout_seconds + 5
        self._file_lock = (
            FileLock(str(settings.token_file) + ".lock", timeout=lock_timeout)
            if settings.token_file
            else None
        )

    @property
    def api_domain(self) -> str:
        return self._token.api_domain if self._token else self._api_domain

    def current(self, *, deadline: float | None = None) -> AccessToken:
        """Return a token valid for at least the refresh margin, refreshing when needed.

        `deadline` (a `time.monotonic()` value) bounds the waits for the refresh locks and the
        token request.
        """
        self._take_thread_lock(deadline)
        try:
            if self._token is not None and self._is_fresh(self._token):
                return self._token
            return self._refresh_shared(deadline=deadline)
        finally:
            self._lock.release()

    def replace_rejected(
        self, rejected: AccessToken, *, deadline: float | None = None
    ) -> AccessToken:
        """Return a token other than `rejected`, which Zoho rejected with INVALID_TOKEN."""
        self._take_thread_lock(deadline)
        try:
            if self._token is not None and self._token.value != rejected.value:
                return self._token
            # Forgotten before the refresh, so that a failed refresh leaves no token that
            # `current` would return as fresh, here or from the token file. Its API domain
            # stays for a refresh that omits one.
            self._api_domain = rejected.api_domain
            self._rejected_value = rejected.value
            self._token = None
            return self._refresh_shared(deadline=deadline)
        finally:
            self._lock.release()

    def _take_thread_lock(self, deadline: float | None) -> None:
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if self._lock.acquire(timeout=timeout):
            return
        raise AttemptError(
            ZohoUnavailableError(
                "timed out waiting for another thread's Zoho token refresh before the event's "
                "time budget ran out; retry later"
            ),
            RetryAction.RETRY,
        )

    def _is_fresh(self, token: AccessToken) -> bool:
        return token.expires_at - self._settings.refresh_margin_seconds > self._clock()

    def _refresh_shared(self, deadline: float | None) -> AccessToken:
        if self._file_lock is None:
            self._token = self._refresh(deadline)
            return self._token

        timeout = self._file_lock.timeout
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        try:
            self._file_lock.acquire(timeout=timeout)
        except FileLockTimeout as exc:
            raise AttemptError(
                ZohoUnavailableError(
                    f"timed out waiting for the token file lock {self._file_lock.lock_file}; "
                    "another process may be stuck refreshing the Zoho token"
                ),
                RetryAction.RETRY,
            ) from exc
        except OSError as exc:
            # Without the lock, every process would refresh on its own and soon exhaust Zoho's
            # 10 tokens per 10 minutes, so the call fails instead of going on unlocked.
            raise AttemptError(
                ZohoUnavailableError(
                    f"failed to create the token file lock {self._file_lock.lock_file} "
                    f"({exc.strerror or exc}): set ZOHO_CRM_TOKEN_FILE to a path in a "
                    "writable folder"
                ),
                RetryAction.RETRY,
            ) from exc
        try:
            stored = self._read_token_file()
            if (
                stored is not None
                and self._is_fresh(stored)
                and stored.value != self._rejected_value
            ):
                self._token = stored
                return stored
            self._token = self._refresh(deadline)
            try:
                self._write_token_file(self._token)
            except OSError as exc:
                # The new token is valid, so this call goes on with it. Other processes then
                # refresh on their own until the file can be written again.
                logger.warning(
                    "failed to write the Zoho token file, so the new token is kept in memory only",
                    extra={
                        "token_file": str(self._settings.token_file),
                        "error": exc.strerror or type(exc).__name__,
                    },
                )
            return self._token
        finally:
            self._file_lock.release()

    def _refresh(self, deadline: float | None) -> AccessToken:
        settings = self._settings
        body = self._oauth_client.prepare_refresh_body(
            refresh_token=settings.refresh_token,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
        )
        timeout = request_timeout(settings, deadline, "the Zoho token refresh")
        started = time.monotonic()
        try:
            response = self._session.post(
                settings.token_url,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=timeout,
            )
        except requests.RequestException as exc:
            transport = transport_failure(exc)
            ZOHO_CALLS.labels(operation="token", status=str(transport)).inc()
            rule = classify(None, None, transport)
            # The API request itself was not sent yet, so even an insert may be retried.
            raise AttemptError(
                ZohoUnavailableError(
                    f"Zoho's token endpoint at {settings.accounts_url} failed: {rule.hint}"
                ),
                RetryAction.RETRY,
            ) from exc
        finally:
            elapsed = time.monotonic() - started
            ZOHO_CALL_SECONDS.labels(operation="token").observe(elapsed)

        ZOHO_CALLS.labels(operation="token", status=str(response.status_code)).inc()
        logger.debug(
            "Zoho token refresh",
            extra={
                "operation": "token",
                "status": response.status_code,
                "duration_seconds": round(elapsed, 3),
            },
        )
        if response.status_code == 429 or _is_throttle_text(response.text):
            raise _throttled(response.headers.get("Retry-After"))
        if response.status_code >= 500:
            raise AttemptError(
                ZohoUnavailableError(
                    f"Zoho's token endpoint returned HTTP {response.status_code}; retry later"
                ),
                RetryAction.RETRY,
            )
        try:
            parsed = response.json()
        except ValueError as exc:
            raise AttemptError(
                ZohoUnavailableError(
                    f"Zoho's token endpoint returned HTTP {response.status_code} without JSON: "
                    "check ZOHO_CRM_ACCOUNTS_URL"
                ),
                RetryAction.RETRY,
            ) from exc
        if not isinstance(parsed, dict):
            raise AttemptError(
                ZohoUnavailableError("Zoho's token endpoint returned JSON that is not an object"),
                RetryAction.RETRY,
            )

        token = parse_token_response(
            parsed,
            now=self._clock(),
            previous_api_domain=self.api_domain,
            allow_http=self._allow_http,
        )
        logger.info(
            "refreshed the Zoho access token",
            extra={"api_domain": token.api_domain, "expires_at": round(token.expires_at)},
        )
        return token

    def _read_token_file(self) -> AccessToken | None:
        path = self._settings.token_file
        if path is None:
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("client_id") != self._settings.client_id:
                return None
            token = AccessToken(
                value=str(stored["access_token"]),
                expires_at=float(stored["expires_at"]),
                api_domain=str(stored["api_domain"]),
            )
            if not math.isfinite(token.expires_at):
                # An infinite expiry would keep the token forever; the handler below logs it.
                raise ValueError("expires_at is not finite")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            logger.warning(
                "ignoring an unreadable Zoho token file; a new token will be fetched",
                extra={"token_file": str(path)},
            )
            return None
        # The configured API domain is trusted: a refresh without api_domain stores it.
        problem = None
        if token.api_domain != self._settings.api_domain.rstrip("/"):
            problem = api_domain_problem(token.api_domain, allow_http=self._allow_http)
        if problem is not None:
            logger.warning(
                "ignoring a Zoho token file whose api_domain is invalid; a new token will be "
                "fetched",
                extra={"token_file": str(path), "problem": problem},
            )
            return None
        return token

    def _write_token_file(self, token: AccessToken) -> None:
        path = self._settings.token_file
        if path is None:
            return
        content = json.dumps(
            {
                "client_id": self._settings.client_id,
                "access_token": token.value,
                "expires_at": token.expires_at,
                "api_domain": token.api_domain,
            }
        )
        write_private_file(path, content)


def _shorten(value: str, limit: int = 80) -> str:
    """Return `value` as a quoted string of at most about `limit` characters, for messages."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + "..."


def request_timeout(
    settings: ZohoSettings, deadline: float | None, request: str
) -> tuple[float, float]:
    """Return the (connect, read) timeouts of one request, cut to end at `deadline`.

    Raises `AttemptError` (retry, because nothing was sent) when the deadline has passed, so
    the retry loop raises the error with `retry_after` set.
    """
    connect = settings.connect_timeout_seconds
    read = settings.timeout_seconds
    if deadline is None:
        return connect, read
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AttemptError(
            ZohoUnavailableError(
                f"the event's time budget ran out before {request} was sent; retry later"
            ),
            RetryAction.RETRY,
        )
    return min(connect, remaining), min(read, remaining)


def write_private_file(path: Path, content: str) -> None:
    """Replace `path` atomically with `content`, readable by the owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def transport_failure(exc: requests.RequestException) -> Transport:
    """Name the transport failure behind a `requests` exception."""
    if isinstance(exc, requests.Timeout):
        return Transport.TIMEOUT
    if isinstance(exc, requests.ConnectionError):
        if _caused_by(exc, ConnectionRefusedError):
            return Transport.CONNECTION_REFUSED
        # http.client.RemoteDisconnected (closed before any response) is a ConnectionResetError.
        if _caused_by(exc, ConnectionResetError):
            return Transport.CONNECTION_RESET
        return Transport.CONNECTION_ERROR
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        # The connection closed in the middle of the response body.
        return Transport.CONNECTION_RESET
    return Transport.CONNECTION_ERROR


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        for argument in getattr(current, "args", ()):
            if isinstance(argument, BaseException) and _caused_by(argument, kind):
                return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and _caused_by(reason, kind):
            return True
        current = current.__cause__ or current.__context__
    return False
