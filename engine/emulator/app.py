"""The emulator's HTTP side: token endpoint, `/crm/v8/...`, and the `/__emulator/` control API."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qsl

import falcon

from engine.emulator.control_values import FAULT_CHECKS, SETTING_CHECKS, shown
from engine.emulator.records import RecordsApi, error_body

API_VERSION = "v8"
TOKEN_WINDOW_SECONDS = 600.0


@dataclass
class EmulatorSettings:
    """Behaviour switches, changeable while the emulator runs."""

    search_lag_seconds: float = 0.0
    """Delay before search returns a write (Zoho's index lags by up to about a minute)."""

    latency_seconds: float = 0.0
    """Delay added to every `/crm` request."""

    concurrency_limit: int | None = None
    """Requests in flight above this get 429 TOO_MANY_REQUESTS; `None` means no limit."""

    token_expires_in: int = 3600
    legacy_token_shape: bool = False
    """Send `expires_in_sec` (seconds) with `expires_in` in milliseconds, as older Zoho did."""

    omit_api_domain: bool = False
    """Leave `api_domain` out of token responses."""

    token_limit_per_window: int | None = 10
    """Access tokens per refresh token per 10 minutes; more get Zoho's "Access Denied" body."""

    max_active_tokens: int = 15
    """Active access tokens per refresh token; a new one beyond this invalidates the oldest."""

    def update(self, changes: dict[str, Any]) -> None:
        """Apply `changes`; raise `ValueError` and change nothing when one is unknown or invalid."""
        known = {item.name for item in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        for name, value in changes.items():
            problem = SETTING_CHECKS[name](value)
            if problem is not None:
                raise ValueError(f"setting {name} {problem}, got {shown(value)}")
        for name, value in changes.items():
            setattr(self, name, value)


@dataclass
class Fault:
    """A failure served instead of (or, for `timeout`, before) the next `count` matching requests.

    `kind` is `status` (respond with `status` and `body`), `timeout` (hold the connection for
    `hold_seconds`, then handle the request normally) or `drop` (close the connection in the
    middle of the response).
    """

    kind: str = "status"
    count: int = 1
    status: int = 500
    body: dict[str, Any] | None = None
    text: str | None = None
    """A raw body served instead of `body`, such as a proxy's HTML error page."""

    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 30.0
    method: str | None = None
    operation: str | None = None
    """token, insert, update, upsert, get, search or fields; `None` matches any."""

    module: str | None = None

    def matches(self, method: str, operation: str, module: str | None) -> bool:
        return (
            (self.method is None or self.method.upper() == method)
            and (self.operation is None or self.operation == operation)
            and (self.module is None or self.module == module)
        )


class EmulatorState:
    """Emulator state besides records: tokens, faults, settings and the request log."""

    def __init__(
        self,
        records: RecordsApi,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        settings: EmulatorSettings,
        stopping: threading.Event,
    ) -> None:
        self.records = records
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.refresh_token_revoked = False
        self.settings = settings
        self.stopping = stopping
        self.base_url = ""
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        """Active access token -> monotonic expiry, oldest first."""
        self.token_issue_times: deque[float] = deque()
        self.faults: list[Fault] = []
        self.log: list[dict[str, Any]] = []
        self.in_flight = 0

    # Tokens

    def issue_token(self) -> dict[str, Any]:
        with self.lock:
            now = time.monotonic()
            while self.token_issue_times and now - self.token_issue_times[0] > TOKEN_WINDOW_SECONDS:
                self.token_issue_times.popleft()
            limit = self.settings.token_limit_per_window
            if limit is not None and len(self.token_issue_times) >= limit:
                # NOTE: the HTTP status of Zoho's throttle response is unconfirmed. This sends 200,
                # as for the token endpoint's other errors.
                return {
                    "error": "Access Denied",
                    "error_description": "You have made too many requests continuously. "
                    "Please try again after some time.",
                    "status": "failure",
                }
            self.token_issue_times.append(now)
            token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            lifetime = self.settings.token_expires_in
            self.tokens[token] = now + lifetime
            while len(self.tokens) > self.settings.max_active_tokens:
                del self.tokens[next(iter(self.tokens))]

        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "scope": "ZohoCRM.modules.ALL ZohoSearch.securesearch.READ",
        }
        if not self.settings.omit_api_domain:
            body["api_domain"] = self.base_url
        if self.settings.legacy_token_shape:
            body["expires_in_sec"] = lifetime
            body["expires_in"] = lifetime * 1000
        else:
            body["expires_in"] = lifetime
        return body

    def token_is_valid(self, token: str) -> bool:
        with self.lock:
            expires_at = self.tokens.get(token)
            return expires_at is not None and expires_at > time.monotonic()

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # Faults and log

    def take_fault(self, method: str, operation: str, module: str | None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, operation, module):
                    fault.count -= 1
                    taken = replace(fault)
                    self.faults = [item for item in self.faults if item.count > 0]
                    return taken
        return None

    def append_log(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["seq"] = len(self.log) + 1
            self.log.append(entry)


class EmulatorApp:
    """Falcon handlers; all routing is by hand so unknown paths get Zoho's error bodies."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def build(self) -> falcon.App:
        app = falcon.App(media_type=falcon.MEDIA_JSON)
        app.req_options.strip_url_path_trailing_slash = True
        app.add_sink(self.control, prefix=r"/__emulator")
        app.add_sink(self.oauth, prefix=r"/oauth")
        app.add_sink(self.crm, prefix=r"/crm")
        return app

    # Token endpoint

    def oauth(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        started = time.monotonic()
        entry: dict[str, Any] = {
            "method": req.method,
            "path": req.path,
            "operation": "token",
            "module": None,
            "time": time.time(),
        }
        params = dict(req.params)
        raw = req.bounded_stream.read().decode("utf-8", errors="replace")
        params.update(dict(parse_qsl(raw)))
        entry["grant_type"] = params.get("grant_type")

        fault = self.state.take_fault(req.method, "token", None)
        if fault is not None and self._serve_fault(fault, resp, entry):
            self.state.append_log(entry)
            return

        if req.path == "/oauth/v2/token/revoke" and req.method == "POST":
            if params.get("token") == self.state.refresh_token:
                self.state.refresh_token_revoked = True
            self._json(resp, 200, {"status": "success"})
        elif req.path != "/oauth/v2/token" or req.method != "POST":
            self._json(resp, 404, {"error": "invalid_request"})
        elif params.get("grant_type") != "refresh_token":
            self._json(resp, 200, {"error": "unsupported_grant_type"})
        elif (
            params.get("client_id") != self.state.client_id
            or params.get("client_secret") != self.state.client_secret
        ):
            self._json(resp, 200, {"error": "invalid_client"})
        elif (
            params.get("refresh_token") != self.state.refresh_token
            or self.state.refresh_token_revoked
        ):
            self._json(resp, 200, {"error": "invalid_code"})
        else:
            self._json(resp, 200, self.state.issue_token())

        entry["status"] = _status_code(resp)
        entry["duration_seconds"] = round(time.monotonic() - started, 4)
        self.state.append_log(entry)

    # Records API

    def crm(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        state = self.state
        parts = [part for part in req.path.split("/") if part]
        operation, module_name, record_id = self._route(req.method, parts)
        query = {key: value for key, value in req.params.items() if isinstance(value, str)}
        body = self._read_json(req)
        entry: dict[str, Any] = {
            "method": req.method,
            "path": req.path,
            "operation": operation,
            "module": module_name,
            "query": query,
            "time": time.time(),
        }
        if isinstance(body, dict):
            entry["body"] = body
        started = time.monotonic()
        # Logged on arrival, so requests still held by a `timeout` fault are visible.
        entry["status"] = None
        state.append_log(entry)

        with state.lock:
            state.in_flight += 1
            over_limit = (
                state.settings.concurrency_limit is not None
                and state.in_flight > state.settings.concurrency_limit
            )
        try:
            if over_limit:
                # NOTE: Zoho's message text for the concurrency limit is unconfirmed.
                self._json(
                    resp,
                    429,
                    error_body(
                        "TOO_MANY_REQUESTS",
                        "concurrency limit exceeded",
                        limit=state.settings.concurrency_limit,
                    ),
                )
            else:
                if state.settings.latency_seconds > 0:
                    state.stopping.wait(state.settings.latency_seconds)
                self._handle_crm(req, resp, entry, operation, module_name, record_id, query, body)
        finally:
            with state.lock:
                state.in_flight -= 1
        if entry["status"] is None:
            entry["status"] = _status_code(resp)
        entry["duration_seconds"] = round(time.monotonic() - started, 4)

    def _handle_crm(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        entry: dict[str, Any],
        operation: str,
        module_name: str | None,
        record_id: str | None,
        query: dict[str, str],
        body: Any,
    ) -> None:
        state = self.state
        fault = state.take_fault(req.method, operation, module_name)
        if fault is not None and self._serve_fault(fault, resp, entry):
            return

        authorization = req.get_header("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme != "Zoho-oauthtoken" or not token:
            # NOTE: the body for a missing or non-Zoho Authorization header is unconfirmed.
            self._json(resp, 401, error_body("AUTHENTICATION_FAILURE", "Authentication failed"))
            return
        if not state.token_is_valid(token):
            self._json(resp, 401, error_body("INVALID_TOKEN", "invalid oauth token"))
            return

        if operation == "unknown":
            self._json(
                resp,
                404,
                error_body(
                    "INVALID_URL_PATTERN",
                    "Please check if the URL trying to access is a correct one",
                ),
            )
            return
        if operation == "fields":
            module_name = query.get("module")
            if not module_name:
                self._json(
                    resp,
                    400,
                    error_body(
                        "REQUIRED_PARAM_MISSING",
                        "One of the expected parameter is missing",
                        param_name="module",
                    ),
                )
                return
        records = state.records
        module = records.module(module_name or "")
        if module is None:
            self._json(
                resp,
                400,
                error_body(
                    "INVALID_MODULE",
                    "the module name given seems to be invalid",
                    resource_path_index=0,
                ),
            )
            return
        if body is _INVALID_JSON:
            self._json(resp, 400, error_body("INVALID_DATA", "body is not a valid JSON"))
            return

        if operation == "insert":
            reply = records.insert(module, body)
        elif operation == "update":
            reply = records.update(module, body, record_id)
        elif operation == "upsert":
            reply = records.upsert(module, body)
        elif operation == "get":
            reply = records.get(module, record_id or "")
        elif operation == "search":
            reply = records.search(module, query)
        else:
            reply = records.fields(module)
        self._json(resp, *reply)

    @staticmethod
    def _route(method: str, parts: list[str]) -> tuple[str, str | None, str | None]:
        """Return (operation, module, record id) for a path under /crm."""
        if len(parts) < 3 or parts[1] != API_VERSION:
            return "unknown", None, None
        rest = parts[2:]
        if rest == ["settings", "fields"] and method == "GET":
            return "fields", None, None
        module = rest[0]
        if len(rest) == 1:
            return {"POST": "insert", "PUT": "update"}.get(method, "unknown"), module, None
        if len(rest) == 2:
            tail = rest[1]
            if tail == "upsert" and method == "POST":
                return "upsert", module, None
            if tail == "search" and method == "GET":
                return "search", module, None
            if method == "GET":
                return "get", module, tail
            if method == "PUT":
                return "update", module, tail
        return "unknown", module, None

    # Faults

    def _serve_fault(self, fault: Fault, resp: falcon.Response, entry: dict[str, Any]) -> bool:
        """Serve `fault`; return False when the request should then be handled normally."""
        entry["fault"] = fault.kind
        if fault.kind == "timeout":
            self.state.stopping.wait(fault.hold_seconds)
            return False
        if fault.kind == "drop":
            # The declared length exceeds the body, so the server closes the connection after
            # a partial response and the client gets a broken connection.
            resp.status = falcon.code_to_http_status(200)
            resp.content_type = falcon.MEDIA_JSON
            resp.stream = iter([b'{"data":['])
            resp.set_header("Content-Length", "1000")
            entry["status"] = "dropped"
            return True
        for name, value in fault.headers.items():
            resp.set_header(name, value)
        if fault.text is not None:
            resp.status = falcon.code_to_http_status(fault.status)
            resp.content_type = "text/html"
            resp.data = fault.text.encode("utf-8")
            return True
        self._json(resp, fault.status, fault.body)
        return True

    # Control API

    def control(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        state = self.state
        parts = [part for part in req.path.split("/") if part][1:]
        body = self._read_json(req)
        if body is _INVALID_JSON:
            self._json(resp, 400, {"error": "the body is not valid JSON"})
            return
        route = (req.method, parts[0] if parts else "")
        if route in (("PATCH", "settings"), ("POST", "faults")) and not isinstance(
            body, dict | None
        ):
            self._json(resp, 400, {"error": f"the body must be a JSON object, got {shown(body)}"})
            return
        try:
            if route == ("GET", "settings"):
                self._json(resp, 200, asdict(state.settings))
            elif route == ("PATCH", "settings"):
                state.settings.update(body or {})
                self._json(resp, 200, asdict(state.settings))
            elif route == ("GET", "faults"):
                self._json(resp, 200, {"faults": [asdict(fault) for fault in state.faults]})
            elif route == ("POST", "faults"):
                fault = make_fault(body or {})
                with state.lock:
                    state.faults.append(fault)
                self._json(resp, 201, asdict(fault))
            elif route == ("DELETE", "faults"):
                with state.lock:
                    state.faults.clear()
                self._json(resp, 200, {"faults": []})
            elif route == ("GET", "log"):
                with state.lock:
                    self._json(resp, 200, {"requests": list(state.log)})
            elif route == ("DELETE", "log"):
                with state.lock:
                    state.log.clear()
                self._json(resp, 200, {"requests": []})
            elif route == ("GET", "records") and len(parts) == 2:
                self._json(resp, 200, {"data": state.records.store.all(parts[1])})
            elif route == ("POST", "tokens") and parts[1:] == ["expire"]:
                state.expire_tokens()
                self._json(resp, 200, {"expired": True})
            elif route == ("POST", "tokens") and parts[1:] == ["revoke"]:
                state.refresh_token_revoked = True
                self._json(resp, 200, {"revoked": True})
            elif route == ("POST", "reset"):
                reset_state(state)
                self._json(resp, 200, {"reset": True})
            else:
                self._json(resp, 404, {"error": f"no control endpoint {req.method} {req.path}"})
        except (TypeError, ValueError) as exc:
            self._json(resp, 400, {"error": str(exc)})

    # Helpers

    @staticmethod
    def _read_json(req: falcon.Request) -> Any:
        raw = req.bounded_stream.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return _INVALID_JSON

    @staticmethod
    def _json(resp: falcon.Response, status: int, body: dict[str, Any] | None) -> None:
        resp.status = falcon.code_to_http_status(status)
        if body is None:
            resp.data = b""
            return
        resp.content_type = falcon.MEDIA_JSON
        resp.data = json.dumps(body).encode("utf-8")


_INVALID_JSON = object()


def make_fault(spec: dict[str, Any]) -> Fault:
    """Build a fault from its JSON description; raise `ValueError` naming an invalid value."""
    if not isinstance(spec, dict):
        raise ValueError(f"a fault must be a JSON object, got {shown(spec)}")
    known = {item.name for item in fields(Fault)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"unknown fault key(s): {', '.join(unknown)}")
    for name, value in spec.items():
        problem = FAULT_CHECKS[name](value)
        if problem is not None:
            raise ValueError(f"fault {name} {problem}, got {shown(value)}")
    return Fault(**spec)


def reset_state(state: EmulatorState) -> None:
    """Forget records, tokens, faults and the log; settings stay."""
    state.records.store.clear()
    with state.lock:
        state.tokens.clear()
        state.token_issue_times.clear()
        state.faults.clear()
        state.log.clear()
        state.refresh_token_revoked = False


def _status_code(resp: falcon.Response) -> int | str:
    status = str(resp.status)
    return int(status.split(" ", 1)[0]) if status[:3].isdigit() else status
