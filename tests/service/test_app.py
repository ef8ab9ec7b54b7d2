"""The HTTP layer through `falcon.testing`, around a small in-test processor."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import falcon.testing
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.errors import (
    ErrorDetail,
    EventValidationError,
    NoActionPlanError,
    RateLimitError,
    RecordNotFoundError,
    ZohoAuthError,
    ZohoDataError,
    ZohoRateLimitError,
    ZohoUnavailableError,
)
from engine.metrics import REGISTRY
from engine.service.app import ENDPOINTS

from .conftest import API_TOKEN, Readiness, RecordingProcessor

EVENT = {
    "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
    "data": {"event_type": "SIM/Updated", "variables": {"i_env": 1}},
    "pb_data": {"account_info": {"id": "79123456789@msisdn"}},
}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}


def post_event(client: falcon.testing.TestClient, body: Any = EVENT, **headers: str) -> Any:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.simulate_post("/process-event", body=raw, headers={**JSON_HEADERS, **headers})


def test_health_needs_no_token(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/health")

    assert result.status_code == 200
    assert result.json == {"status": "ok", "name": "zoho-crm-connector", "version": "0.1.0"}


def test_health_accepts_head(client: falcon.testing.TestClient) -> None:
    result = client.simulate_head("/health")

    assert result.status_code == 200
    assert result.text == ""


def test_valid_event_returns_processor_answer(
    client: falcon.testing.TestClient, processor: RecordingProcessor
) -> None:
    result = post_event(client)

    assert result.status_code == 200
    assert result.json == {"message": "Event processed successfully", "event_id": EVENT["event_id"]}
    assert processor.bodies == [EVENT]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param({}, "missing Authorization header: send 'Bearer <API_TOKEN>'", id="no header"),
        pytest.param({"Authorization": "Bearer wrong-token"}, "invalid Bearer token", id="wrong"),
        pytest.param(
            {"Authorization": f"Bearer {API_TOKEN}x"}, "invalid Bearer token", id="token prefix"
        ),
        pytest.param(
            {"Authorization": f"Basic {API_TOKEN}"},
            "Authorization header is not of the form 'Bearer <token>'",
            id="basic scheme",
        ),
        pytest.param(
            {"Authorization": "Bearer "},
            "Authorization header is not of the form 'Bearer <token>'",
            id="empty token",
        ),
    ],
)
def test_bad_token_is_401(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    headers: dict[str, str],
    message: str,
) -> None:
    result = client.simulate_post(
        "/process-event",
        body=json.dumps(EVENT),
        headers={"Content-Type": "application/json", **headers},
    )

    assert result.status_code == 401
    assert result.headers["WWW-Authenticate"] == "Bearer"
    assert result.json == {
        "message": message,
        "error": "Unauthorized",
        "type": "AUTHENTICATION_ERROR",
        "code": "unauthorized",
    }
    assert processor.bodies == []


def test_bearer_scheme_is_case_insensitive(client: falcon.testing.TestClient) -> None:
    result = post_event(client, Authorization=f"bearer {API_TOKEN}")

    assert result.status_code == 200


def test_unknown_path_is_404(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/events", headers=AUTH)

    assert result.status_code == 404
    assert result.json == {
        "message": "no resource at /events: the endpoints are POST /process-event, GET /health, "
        "GET /ready, GET /metrics",
        "error": "Not found",
        "type": "VALIDATION_ERROR",
        "code": "not_found",
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_listed_endpoints_exist(client: falcon.testing.TestClient, endpoint: str) -> None:
    method, path = endpoint.split(" ")

    result = client.simulate_request(method, path, headers=AUTH)

    assert result.status_code not in (404, 405)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_wrong_method_is_405(client: falcon.testing.TestClient, method: str) -> None:
    result = client.simulate_request(method, "/process-event", headers=AUTH)

    assert result.status_code == 405
    assert result.headers["Allow"] == "POST"
    assert result.json == {
        "message": f"method {method} is not allowed on /process-event: use POST",
        "error": "Method not allowed",
        "type": "VALIDATION_ERROR",
        "code": "method_not_allowed",
    }


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        pytest.param("/process-event", "POST", id="event endpoint"),
        pytest.param("/health", "GET, HEAD", id="health"),
        pytest.param("/ready", "GET, HEAD", id="readiness"),
        pytest.param("/metrics", "GET", id="metrics"),
    ],
)
def test_options_is_405(client: falcon.testing.TestClient, path: str, allowed: str) -> None:
    result = client.simulate_options(path)

    assert result.status_code == 405
    assert result.headers["Allow"] == allowed
    assert result.json == {
        "message": f"method OPTIONS is not allowed on {path}: use {allowed}",
        "error": "Method not allowed",
        "type": "VALIDATION_ERROR",
        "code": "method_not_allowed",
    }


@pytest.mark.parametrize(
    ("cors_origins", "headers"),
    [
        pytest.param(
            (),
            {"Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST"},
            id="preflight with CORS closed",
        ),
        pytest.param(
            ("http://localhost:8080",),
            {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
            id="preflight from another origin",
        ),
        pytest.param(
            ("http://localhost:8080",),
            {"Origin": "http://localhost:8080"},
            id="options without a requested method",
        ),
    ],
)
def test_options_not_allowed_preflight_is_405(
    make_client: Any, cors_origins: tuple[str, ...], headers: dict[str, str]
) -> None:
    client = make_client(cors_origins=cors_origins)

    result = client.simulate_options("/process-event", headers=headers)

    assert result.status_code == 405


@pytest.mark.parametrize(
    "cors_origins",
    [
        pytest.param(("http://localhost:8080",), id="listed origin"),
        pytest.param(("*",), id="any origin"),
    ],
)
def test_cors_preflight_is_answered(make_client: Any, cors_origins: tuple[str, ...]) -> None:
    client = make_client(cors_origins=cors_origins)

    result = client.simulate_options(
        "/process-event",
        headers={
            "Origin": "http://localhost:8080",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert result.status_code == 200
    assert result.headers["Access-Control-Allow-Methods"] == "POST"
    assert result.headers["Access-Control-Allow-Headers"] == "authorization, content-type"


def test_wrong_method_without_token_is_405(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/process-event")

    assert result.status_code == 405


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        pytest.param(None, "none", id="no content type"),
        pytest.param("text/plain", "text/plain", id="text"),
        pytest.param(
            "application/x-www-form-urlencoded", "application/x-www-form-urlencoded", id="form"
        ),
    ],
)
def test_non_json_content_type_is_415(
    client: falcon.testing.TestClient, content_type: str | None, shown: str
) -> None:
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type

    result = client.simulate_post("/process-event", body=json.dumps(EVENT), headers=headers)

    assert result.status_code == 415
    assert result.json == {
        "message": f"Content-Type {shown!r} is not supported: send the event as application/json",
        "error": "Unsupported media type",
        "type": "VALIDATION_ERROR",
        "code": "unsupported_media_type",
    }


@pytest.mark.parametrize(
    ("content_type", "charset"),
    [
        pytest.param("application/json; charset=iso-8859-1", "iso-8859-1", id="latin-1"),
        pytest.param('application/json; charset="UTF-16"', "utf-16", id="quoted utf-16"),
        pytest.param("application/vnd.nsps+json;charset=ascii", "ascii", id="json suffix"),
    ],
)
def test_charset_other_than_utf8_is_415(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    content_type: str,
    charset: str,
) -> None:
    headers = {**AUTH, "Content-Type": content_type}

    result = client.simulate_post(
        "/process-event", body='{"event_id": "\xe9"}'.encode("latin-1"), headers=headers
    )

    assert result.status_code == 415
    assert result.json == {
        "message": f"charset {charset!r} is not supported: send the event as UTF-8, with "
        "Content-Type 'application/json' or 'application/json; charset=utf-8'",
        "error": "Unsupported media type",
        "type": "VALIDATION_ERROR",
        "code": "unsupported_media_type",
    }
    assert processor.bodies == []


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json; charset=utf-8", id="with charset"),
        pytest.param("application/json; charset=UTF8", id="charset utf8"),
        pytest.param("Application/JSON", id="upper case"),
        pytest.param("application/vnd.nsps+json", id="json suffix"),
    ],
)
def test_json_content_types_are_accepted(
    client: falcon.testing.TestClient, content_type: str
) -> None:
    result = post_event(client, **{"Content-Type": content_type})

    assert result.status_code == 200


def test_body_over_limit_by_content_length_is_413(
    make_client: Any, processor: RecordingProcessor
) -> None:
    client = make_client(max_body_bytes=2048)
    body = {**EVENT, "padding": "x" * 4096}

    result = post_event(client, body)

    assert result.status_code == 413
    assert result.json["type"] == "VALIDATION_ERROR"
    assert result.json["message"].startswith("request body of ")
    assert result.json["message"].endswith(
        "is larger than the limit of 2048 bytes (MAX_BODY_BYTES)"
    )
    assert processor.bodies == []


def test_body_over_limit_without_content_length_is_413(make_client: Any) -> None:
    client = make_client(max_body_bytes=2048)
    raw = json.dumps({**EVENT, "padding": "x" * 4096}).encode()

    # A body without Content-Length, as a chunked request arrives.
    environ = falcon.testing.create_environ(
        method="POST", path="/process-event", headers=JSON_HEADERS
    )
    environ["wsgi.input"] = io.BytesIO(raw)
    environ.pop("CONTENT_LENGTH", None)
    response = falcon.testing.StartResponseMock()
    chunks = client.app(environ, response)
    body = json.loads(b"".join(chunks))

    assert response.status.startswith("413 ")
    assert body["message"] == (
        "request body is larger than the limit of 2048 bytes (MAX_BODY_BYTES)"
    )


def test_body_at_limit_is_accepted(make_client: Any) -> None:
    client = make_client(max_body_bytes=2048)
    raw = json.dumps(EVENT)
    raw = raw[:-1] + ', "padding": "' + "x" * (2048 - len(raw) - 15) + '"}'
    assert len(raw.encode()) == 2048

    result = post_event(client, raw)

    assert result.status_code == 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            "{bad",
            "body is not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1 column 2",
            id="syntax error",
        ),
        pytest.param("", "body is empty: send one NSPS event as a JSON object", id="empty"),
        pytest.param(
            b"\xff\xfe{}", "body is not UTF-8: invalid byte at position 0", id="not utf-8"
        ),
        pytest.param(
            '{"event_id": NaN}', "body is not valid JSON: NaN is not a JSON value", id="NaN"
        ),
        pytest.param(
            "[" * 100_000 + "]" * 100_000,
            "body is nested deeper than 128 levels",
            id="nesting beyond the parser limit",
        ),
        pytest.param(
            '{"event_id": "a", "x": ' + "[" * 300 + "]" * 300 + "}",
            "body is nested deeper than 128 levels",
            id="nesting the parser accepts",
        ),
        pytest.param(
            '{"event_id": ' + "9" * 5000 + "}",
            "body is not valid JSON: an integer has 5000 digits, more than the 4300 allowed",
            id="integer over 4300 digits",
        ),
    ],
)
def test_invalid_json_is_422_with_details(
    make_client: Any, processor: RecordingProcessor, raw: str | bytes, message: str
) -> None:
    client = make_client(max_body_bytes=1024 * 1024)

    result = post_event(client, raw)

    assert result.status_code == 422
    assert result.json == {
        "message": message,
        "error": "Invalid event",
        "type": "VALIDATION_ERROR",
        "code": "invalid_event",
        "details": [{"loc": ["body"], "msg": message, "type": "json_invalid"}],
    }
    assert processor.bodies == []


def test_nesting_at_limit_is_accepted(
    client: falcon.testing.TestClient, processor: RecordingProcessor
) -> None:
    # The event object is level 1, so the list nests 127 more levels.
    deep: Any = []
    for _ in range(126):
        deep = [deep]
    body = {**EVENT, "deep": deep}

    result = post_event(client, body)

    assert result.status_code == 200
    assert processor.bodies == [body]


SURROGATE_MESSAGE = (
    "a string has the unpaired UTF-16 surrogate escape {escape}, which is not a character: "
    "send characters outside the Basic Multilingual Plane as UTF-8 or as a surrogate pair"
)


@pytest.mark.parametrize(
    ("raw", "escape", "loc"),
    [
        pytest.param('{"event_id": "\\ud800"}', "\\ud800", ["body", "event_id"], id="event id"),
        pytest.param(
            '{"pb_data": {"account_info": {"firstname": "Ol\\udfffena"}}}',
            "\\udfff",
            ["body", "pb_data", "account_info", "firstname"],
            id="nested value",
        ),
        pytest.param(
            '{"data": {"ids": ["a", "\\uDBFF"]}}',
            "\\udbff",
            ["body", "data", "ids", 1],
            id="list item",
        ),
        pytest.param('{"pb_data": {"\\ud800": 1}}', "\\ud800", ["body", "pb_data"], id="key"),
    ],
)
def test_unpaired_surrogate_is_422(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    raw: str,
    escape: str,
    loc: list[str | int],
) -> None:
    message = SURROGATE_MESSAGE.format(escape=escape)

    result = post_event(client, raw)

    assert result.status_code == 422
    assert result.json["message"] == message
    assert result.json["details"] == [{"loc": loc, "msg": message, "type": "json_invalid"}]
    assert processor.bodies == []


def test_surrogate_pair_is_accepted(
    client: falcon.testing.TestClient, processor: RecordingProcessor
) -> None:
    raw = json.dumps({**EVENT, "note": "\U0001f600"})
    assert "\\ud83d\\ude00" in raw

    result = post_event(client, raw)

    assert result.status_code == 200
    assert processor.bodies[0]["note"] == "\U0001f600"


@pytest.mark.parametrize(
    ("error", "status", "error_type", "retry_after"),
    [
        pytest.param(
            EventValidationError(
                "event is invalid",
                details=[ErrorDetail(("pb_data", "sim_info"), "required", "missing")],
            ),
            422,
            "VALIDATION_ERROR",
            None,
            id="schema error",
        ),
        pytest.param(NoActionPlanError("no plan"), 422, "VALIDATION_ERROR", None, id="no plan"),
        pytest.param(ZohoDataError("bad email"), 422, "VALIDATION_ERROR", None, id="zoho data"),
        pytest.param(
            RateLimitError("busy", retry_after=1.0),
            429,
            "RATE_LIMIT_ERROR",
            "1",
            id="own rate limit",
        ),
        pytest.param(
            ZohoRateLimitError("slow down", retry_after=12.2),
            429,
            "RATE_LIMIT_ERROR",
            "13",
            id="zoho rate limit rounds up",
        ),
        pytest.param(
            ZohoAuthError("refresh token revoked"), 500, "SERVICE_ERROR", None, id="zoho auth"
        ),
        pytest.param(
            ZohoUnavailableError("timed out", retry_after=0.2),
            503,
            "CONNECTION_ERROR",
            "1",
            id="zoho unavailable",
        ),
    ],
)
def test_processor_error_becomes_its_response(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    error: Exception,
    status: int,
    error_type: str,
    retry_after: str | None,
) -> None:
    processor.error = error

    result = post_event(client)

    assert result.status_code == status
    assert result.json["type"] == error_type
    assert result.json == error.to_body()  # type: ignore[attr-defined]
    assert result.headers.get("Retry-After") == retry_after


def failed_count(event_type: str) -> float:
    labels = {"event_type": event_type, "outcome": "failed"}
    return REGISTRY.get_sample_value("connector_events_total", labels) or 0.0


@pytest.mark.parametrize(
    ("error", "event_type"),
    [
        pytest.param(EventValidationError("bad"), "invalid", id="invalid event"),
        pytest.param(NoActionPlanError("no plan"), "invalid", id="no action plan"),
        pytest.param(ZohoDataError("rejected"), "SIM/Updated", id="zoho rejected the data"),
        pytest.param(RecordNotFoundError("no record"), "SIM/Updated", id="record not found"),
        pytest.param(RateLimitError("busy"), "SIM/Updated", id="record locks busy"),
        pytest.param(ZohoUnavailableError("down"), "SIM/Updated", id="zoho unavailable"),
        pytest.param(KeyError("bug"), "SIM/Updated", id="unexpected error"),
    ],
)
def test_failed_event_metric_label(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    error: Exception,
    event_type: str,
) -> None:
    other_type = "SIM/Updated" if event_type == "invalid" else "invalid"
    before = failed_count(event_type)
    other_before = failed_count(other_type)
    processor.error = error

    post_event(client)

    assert failed_count(event_type) == before + 1
    assert failed_count(other_type) == other_before


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(KeyError("bug"), id="unexpected error"),
        pytest.param(ZohoUnavailableError("down"), id="zoho unavailable"),
    ],
)
def test_unknown_event_type_is_no_metric_label(
    client: falcon.testing.TestClient, processor: RecordingProcessor, error: Exception
) -> None:
    event_type = "Unknown/Type-4f1c"
    before = failed_count("invalid")
    processor.error = error

    post_event(client, {**EVENT, "data": {"event_type": event_type}})

    assert failed_count("invalid") == before + 1
    assert (
        REGISTRY.get_sample_value(
            "connector_events_total", {"event_type": event_type, "outcome": "failed"}
        )
        is None
    )


def test_unexpected_error_is_500_without_trace(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor.error = KeyError("secret internal detail")

    with caplog.at_level(logging.ERROR):
        result = post_event(client, **{"X-B3-TraceId": "trace-1"})

    assert result.status_code == 500
    assert result.json == {
        "message": "internal error: see the service log lines with request_id trace-1",
        "error": "Internal error",
        "type": "INTERNAL_ERROR",
        "code": "internal_error",
    }
    assert "secret internal detail" not in result.text
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1
    assert logged[0].request_id == "trace-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/health", "/nope", "/process-event", "/metrics", "/ready"])
def test_security_headers_on_every_response(client: falcon.testing.TestClient, path: str) -> None:
    result = client.simulate_get(path)

    assert result.headers["X-Content-Type-Options"] == "nosniff"
    assert result.headers["X-Frame-Options"] == "DENY"
    assert result.headers["Referrer-Policy"] == "no-referrer"
    assert result.headers["Cache-Control"] == "no-store"
    assert result.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
    assert "Strict-Transport-Security" not in result.headers


def test_production_adds_hsts(make_client: Any) -> None:
    client = make_client(environment="production")

    result = client.simulate_get("/health")

    assert result.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_cors_closed_by_default(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/health", headers={"Origin": "http://localhost:8080"})

    assert "Access-Control-Allow-Origin" not in result.headers


def test_cors_allow_list_in_development(make_client: Any) -> None:
    client = make_client(cors_origins=("http://localhost:8080",))

    allowed = client.simulate_get("/health", headers={"Origin": "http://localhost:8080"})
    other = client.simulate_get("/health", headers={"Origin": "http://evil.example"})

    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_trace_headers_are_echoed(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get(
        "/health", headers={"X-B3-TraceId": "abc123", "X-Request-Id": "req-9"}
    )

    assert result.headers["X-B3-TraceId"] == "abc123"
    assert result.headers["X-Request-Id"] == "req-9"


def test_missing_trace_headers_get_uuids(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/health")

    assert len(result.headers["X-B3-TraceId"]) == 36
    assert len(result.headers["X-Request-Id"]) == 36
    assert result.headers["X-B3-TraceId"] != result.headers["X-Request-Id"]


def test_ready_when_zoho_ready(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/ready")

    assert result.status_code == 200
    assert result.json == {"status": "ready", "zoho": {"ready": True, "token": "ok", "api": "ok"}}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(None, 200, id="ready"),
        pytest.param(ZohoUnavailableError("Zoho CRM timed out"), 503, id="not ready"),
    ],
)
def test_ready_accepts_head(
    client: falcon.testing.TestClient,
    readiness: Readiness,
    error: ZohoUnavailableError | None,
    status: int,
) -> None:
    readiness.error = error

    result = client.simulate_head("/ready")

    assert result.status_code == status
    assert result.text == ""


def test_not_ready_is_503(client: falcon.testing.TestClient, readiness: Readiness) -> None:
    readiness.error = ZohoUnavailableError("Zoho CRM timed out")

    result = client.simulate_get("/ready")

    assert result.status_code == 503
    assert result.json == {
        "status": "unavailable",
        "zoho": {"ready": False, "error": "Zoho CRM timed out"},
    }


def served_sample(text: str, name: str, labels: dict[str, str]) -> float:
    """Return one sample of a `/metrics` response body, or 0 when it is absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_metrics_count_events(client: falcon.testing.TestClient) -> None:
    labels = {"event_type": "SIM/Updated", "outcome": "processed"}
    before = served_sample(client.simulate_get("/metrics").text, "connector_events_total", labels)
    post_event(client)

    result = client.simulate_get("/metrics")

    assert result.status_code == 200
    assert result.headers["Content-Type"].startswith("text/plain; version=")
    assert served_sample(result.text, "connector_events_total", labels) == before + 1


def test_summary_and_access_log_lines(
    client: falcon.testing.TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        post_event(client, **{"X-B3-TraceId": "trace-7", "X-Request-Id": "unique-7"})

    summary = [record for record in caplog.records if record.getMessage() == "event processed"]
    access = [record for record in caplog.records if record.name == "engine.service.access"]
    assert len(summary) == 1
    assert summary[0].request_id == "trace-7"  # type: ignore[attr-defined]
    assert summary[0].unique_id == "unique-7"  # type: ignore[attr-defined]
    assert summary[0].event_id == EVENT["event_id"]  # type: ignore[attr-defined]
    assert summary[0].event_type == "SIM/Updated"  # type: ignore[attr-defined]
    assert summary[0].outcome == "processed"  # type: ignore[attr-defined]
    assert summary[0].zoho_calls == 2  # type: ignore[attr-defined]
    assert len(access) == 1
    assert access[0].status == 200  # type: ignore[attr-defined]
    assert access[0].path == "/process-event"  # type: ignore[attr-defined]


def test_failed_event_logs_one_summary_line(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor.error = ZohoUnavailableError("Zoho CRM timed out")

    with caplog.at_level(logging.INFO):
        post_event(client)

    failed = [record for record in caplog.records if record.getMessage() == "event failed"]
    assert len(failed) == 1
    assert failed[0].levelno == logging.ERROR
    assert failed[0].error_code == "zoho_unavailable"  # type: ignore[attr-defined]
    assert failed[0].event_id == EVENT["event_id"]  # type: ignore[attr-defined]


def raised_from(cause: Exception) -> ZohoUnavailableError:
    try:
        raise ZohoUnavailableError("Zoho CRM timed out") from cause
    except ZohoUnavailableError as error:
        return error


@pytest.mark.parametrize(
    ("error", "cause_class"),
    [
        pytest.param(ZohoUnavailableError("Zoho CRM timed out"), None, id="no cause"),
        pytest.param(raised_from(TimeoutError("read")), "TimeoutError", id="timeout cause"),
    ],
)
def test_cause_class_logged_only_when_set(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    caplog: pytest.LogCaptureFixture,
    error: ZohoUnavailableError,
    cause_class: str | None,
) -> None:
    processor.error = error

    with caplog.at_level(logging.INFO):
        post_event(client)

    failed = [record for record in caplog.records if record.getMessage() == "event failed"]
    assert len(failed) == 1
    assert hasattr(failed[0], "cause_class") is (cause_class is not None)
    assert getattr(failed[0], "cause_class", None) == cause_class


@pytest.mark.parametrize(
    ("send", "message", "status"),
    [
        pytest.param(
            lambda client: post_event(client, Authorization="Bearer wrong"),
            "request failed",
            401,
            id="wrong token",
        ),
        pytest.param(
            lambda client: post_event(client, b"{not json"),
            "request failed",
            422,
            id="body not JSON",
        ),
        pytest.param(
            lambda client: client.simulate_get("/helth"), "request rejected", 404, id="unknown path"
        ),
        pytest.param(
            lambda client: client.simulate_get("/process-event"),
            "request rejected",
            405,
            id="method not allowed",
        ),
    ],
)
def test_request_without_event_logs_its_failure(
    client: falcon.testing.TestClient,
    caplog: pytest.LogCaptureFixture,
    send: Any,
    message: str,
    status: int,
) -> None:
    with caplog.at_level(logging.INFO):
        send(client)

    failures = [
        record
        for record in caplog.records
        if record.getMessage() in ("event failed", "request failed", "request rejected")
    ]
    assert [record.getMessage() for record in failures] == [message]
    assert failures[0].levelno == logging.WARNING
    assert failures[0].status == status  # type: ignore[attr-defined]


def test_token_never_logged(
    client: falcon.testing.TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        post_event(client)
        post_event(client, Authorization="Bearer wrong-token-value")

    text = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert API_TOKEN not in text
    assert "wrong-token-value" not in text


def test_long_event_id_is_cut_in_logs(
    client: falcon.testing.TestClient,
    processor: RecordingProcessor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor.error = EventValidationError("event_id is not a UUID")
    event = {**EVENT, "event_id": "x" * 10_000}

    with caplog.at_level(logging.INFO):
        post_event(client, event)

    failed = [record for record in caplog.records if record.getMessage() == "event failed"]
    assert len(failed) == 1
    assert failed[0].event_id == "x" * 128  # type: ignore[attr-defined]
