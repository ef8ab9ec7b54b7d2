"""The emulator's bodies and status codes, compared with the shapes Zoho CRM v8 sends."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from engine.emulator import EmulatorServer


def crm(emulator: EmulatorServer, path: str) -> str:
    return f"{emulator.url}/crm/v8/{path}"


def insert(
    api: requests.Session, emulator: EmulatorServer, module: str, *records: dict[str, Any]
) -> requests.Response:
    return api.post(crm(emulator, module), json={"data": list(records)}, timeout=10)


def test_insert_success_shape(emulator: EmulatorServer, api: requests.Session) -> None:
    response = insert(api, emulator, "Contacts", {"Last_Name": "X", "Email": "x@y.z"})

    element = response.json()["data"][0]
    assert response.status_code == 201
    assert element["code"] == "SUCCESS"
    assert element["status"] == "success"
    assert element["message"] == "record added"
    assert "id" not in element
    assert isinstance(element["details"]["id"], str)
    assert len(element["details"]["id"]) == 19
    assert element["details"]["$approval_state"] == "approved"
    assert sorted(element["details"]["Created_By"]) == ["email", "id", "name"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(
            {"Last_Name": "X", "Phone": "call me maybe"},
            {
                "code": "INVALID_DATA",
                "details": {
                    "api_name": "Phone",
                    "json_path": "$.data[0].Phone",
                    "expected_data_type": "phone",
                },
                "message": "invalid data",
                "status": "error",
            },
            id="phone with letters",
        ),
        pytest.param(
            {"Last_Name": "X", "Email": "not-an-email"},
            {
                "code": "INVALID_DATA",
                "details": {
                    "api_name": "Email",
                    "json_path": "$.data[0].Email",
                    "expected_data_type": "email",
                },
                "message": "invalid data",
                "status": "error",
            },
            id="email without at",
        ),
        pytest.param(
            {"First_Name": "No last name"},
            {
                "code": "MANDATORY_NOT_FOUND",
                "details": {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"},
                "message": "required field not found",
                "status": "error",
            },
            id="mandatory last name missing",
        ),
        pytest.param(
            {"Last_Name": "x" * 81},
            {
                "code": "INVALID_DATA",
                "details": {
                    "api_name": "Last_Name",
                    "json_path": "$.data[0].Last_Name",
                    "maximum_length": 80,
                },
                "message": "invalid data",
                "status": "error",
            },
            id="text over maximum length",
        ),
        pytest.param(
            {"Last_Name": "X", "Blocked_PB": "yes"},
            {
                "code": "INVALID_DATA",
                "details": {
                    "api_name": "Blocked_PB",
                    "json_path": "$.data[0].Blocked_PB",
                    "expected_data_type": "boolean",
                },
                "message": "invalid data",
                "status": "error",
            },
            id="boolean as string",
        ),
        pytest.param(
            {"Last_Name": "X", "I_Account_PB": 1234567890123456789},
            {
                "code": "INVALID_DATA",
                "details": {
                    "api_name": "I_Account_PB",
                    "json_path": "$.data[0].I_Account_PB",
                    "maximum_length": 18,
                },
                "message": "invalid data",
                "status": "error",
            },
            id="long integer over 18 digits",
        ),
    ],
)
def test_per_record_error_shape(
    record: dict[str, Any],
    expected: dict[str, Any],
    emulator: EmulatorServer,
    api: requests.Session,
) -> None:
    response = insert(api, emulator, "Contacts", record)

    assert response.status_code == 400
    assert response.json() == {"data": [expected]}


@pytest.mark.parametrize(
    "record",
    [
        pytest.param({"Last_Name": "X", "Bill_Status_PB": "open"}, id="unknown picklist value"),
        pytest.param(
            {"Last_Name": "X", "I_Account_PB": "123456789012345678"}, id="long integer as string"
        ),
        pytest.param({"Last_Name": "X", "Phone": "+44 (20) 7946-0958"}, id="phone separators"),
        pytest.param({"Last_Name": "X", "Unknown_Field": 1}, id="unknown field ignored"),
    ],
)
def test_values_zoho_accepts(
    record: dict[str, Any], emulator: EmulatorServer, api: requests.Session
) -> None:
    response = insert(api, emulator, "Contacts", record)

    assert response.status_code == 201


def test_duplicate_unique_field(emulator: EmulatorServer, api: requests.Session) -> None:
    first = insert(api, emulator, "Contacts", {"Last_Name": "A", "I_PB": "acc"}).json()

    response = insert(api, emulator, "Contacts", {"Last_Name": "B", "I_PB": "acc"})

    element = response.json()["data"][0]
    assert response.status_code == 400
    assert element["code"] == "DUPLICATE_DATA"
    assert element["details"]["api_name"] == "I_PB"
    assert element["details"]["duplicate_record"]["id"] == first["data"][0]["details"]["id"]


def test_lookup_to_missing_record(emulator: EmulatorServer, api: requests.Session) -> None:
    response = insert(
        api, emulator, "SIM_Cards", {"Name": "S", "Related_Contact": {"id": "5725767000009999999"}}
    )

    assert response.json()["data"][0] == {
        "code": "INVALID_DATA",
        "details": {"api_name": "Related_Contact", "json_path": "$.data[0].Related_Contact"},
        "message": "the id given seems to be invalid",
        "status": "error",
    }


def test_mixed_batch_is_207(emulator: EmulatorServer, api: requests.Session) -> None:
    response = insert(api, emulator, "Contacts", {"Last_Name": "A"}, {"First_Name": "B"})

    assert response.status_code == 207
    assert [element["status"] for element in response.json()["data"]] == ["success", "error"]


def test_more_than_100_records(emulator: EmulatorServer, api: requests.Session) -> None:
    response = insert(api, emulator, "Contacts", *({"Last_Name": "A"} for _ in range(101)))

    assert response.status_code == 400
    assert response.json()["code"] == "LIMIT_EXCEEDED"


def test_update_and_upsert_shapes(emulator: EmulatorServer, api: requests.Session) -> None:
    created = insert(api, emulator, "Contacts", {"Last_Name": "A", "I_PB": "k"}).json()
    record_id = created["data"][0]["details"]["id"]

    updated = api.put(
        crm(emulator, "Contacts"), json={"data": [{"id": record_id, "First_Name": "F"}]}, timeout=10
    )
    upserted = api.post(
        crm(emulator, "Contacts/upsert"),
        json={"data": [{"I_PB": "k", "First_Name": "G"}], "duplicate_check_fields": ["I_PB"]},
        timeout=10,
    )

    assert updated.status_code == 200
    assert updated.json()["data"][0]["message"] == "record updated"
    element = upserted.json()["data"][0]
    assert (element["action"], element["duplicate_field"]) == ("update", "I_PB")
    assert element["details"]["id"] == record_id


def test_update_unknown_id(emulator: EmulatorServer, api: requests.Session) -> None:
    response = api.put(
        crm(emulator, "Contacts/5725767000009999999"),
        json={"data": [{"First_Name": "F"}]},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["data"][0]["message"] == "the id given seems to be invalid"


def test_upsert_rejects_non_unique_check_field(
    emulator: EmulatorServer, api: requests.Session
) -> None:
    response = api.post(
        crm(emulator, "Contacts/upsert"),
        json={"data": [{"Last_Name": "A"}], "duplicate_check_fields": ["Last_Name"]},
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["details"]["api_name"] == "Last_Name"


def test_get_by_id_and_204(emulator: EmulatorServer, api: requests.Session) -> None:
    created = insert(api, emulator, "Contacts", {"Last_Name": "A"}).json()
    record_id = created["data"][0]["details"]["id"]

    found = api.get(crm(emulator, f"Contacts/{record_id}"), timeout=10)
    missing = api.get(crm(emulator, "Contacts/5725767000009999999"), timeout=10)

    assert found.json()["data"][0]["Last_Name"] == "A"
    assert missing.status_code == 204
    assert missing.content == b""


@pytest.mark.parametrize(
    ("stored", "criteria", "found"),
    [
        pytest.param("ABC Inc", "(I_PB:equals:ABC)", True, id="equals matches a word"),
        pytest.param("ABC Inc", "(I_PB:equals:abc inc)", True, id="equals ignores case"),
        pytest.param("ABCD", "(I_PB:equals:ABC)", False, id="equals needs whole words"),
        pytest.param("Smith, Jr.", r"(I_PB:equals:Smith\, Jr.)", True, id="escaped comma"),
        pytest.param("a(b)", r"(I_PB:equals:a\(b\))", True, id="escaped brackets"),
        pytest.param("ABC Inc", "(I_PB:starts_with:AB)", True, id="starts with"),
        pytest.param(
            "ABC Inc",
            "((I_PB:equals:ABC)and(Last_Name:equals:L))",
            True,
            id="and of two conditions",
        ),
        pytest.param(
            "ABC Inc", "((I_PB:equals:zzz)or(Last_Name:equals:L))", True, id="or of two conditions"
        ),
    ],
)
def test_search_criteria(
    stored: str, criteria: str, found: bool, emulator: EmulatorServer, api: requests.Session
) -> None:
    insert(api, emulator, "Contacts", {"Last_Name": "L", "I_PB": stored})

    response = api.get(crm(emulator, "Contacts/search"), params={"criteria": criteria}, timeout=10)

    assert response.status_code == (200 if found else 204)
    if found:
        body = response.json()
        assert body["data"][0]["I_PB"] == stored
        assert body["info"] == {"per_page": 200, "count": 1, "page": 1, "more_records": False}


@pytest.mark.parametrize(
    "criteria",
    [
        pytest.param("(I_PB:equals:a,b)", id="unescaped comma"),
        pytest.param("(I_PB:equals:a", id="missing bracket"),
        pytest.param("(I_PB:like:a)", id="unknown operator"),
        pytest.param("(createdTime:equals:a)", id="unknown field"),
    ],
)
def test_search_invalid_query(
    criteria: str, emulator: EmulatorServer, api: requests.Session
) -> None:
    response = api.get(crm(emulator, "Contacts/search"), params={"criteria": criteria}, timeout=10)

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_QUERY"
    assert response.json()["message"] == "invalid query formed"


def test_search_lags_writes(emulator: EmulatorServer, api: requests.Session) -> None:
    emulator.update_settings(search_lag_seconds=60)
    created = insert(api, emulator, "Contacts", {"Last_Name": "New", "I_PB": "fresh"}).json()
    record_id = created["data"][0]["details"]["id"]

    searched = api.get(
        crm(emulator, "Contacts/search"), params={"criteria": "(I_PB:equals:fresh)"}, timeout=10
    )
    fetched = api.get(crm(emulator, f"Contacts/{record_id}"), timeout=10)

    assert searched.status_code == 204
    assert fetched.status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param(
            {"Authorization": "Zoho-oauthtoken 1000.expired.token"},
            "INVALID_TOKEN",
            id="unknown token",
        ),
        pytest.param(
            {"Authorization": "Bearer 1000.abc"}, "AUTHENTICATION_FAILURE", id="bearer scheme"
        ),
    ],
)
def test_auth_errors(headers: dict[str, str], code: str, emulator: EmulatorServer) -> None:
    response = requests.get(
        crm(emulator, "Contacts/5725767000000411001"), headers=headers, timeout=10
    )

    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response.json()["status"] == "error"


def test_invalid_token_body(emulator: EmulatorServer) -> None:
    response = requests.get(
        crm(emulator, "Contacts/1"), headers={"Authorization": "Zoho-oauthtoken nope"}, timeout=10
    )

    assert response.json() == {
        "code": "INVALID_TOKEN",
        "details": {},
        "message": "invalid oauth token",
        "status": "error",
    }


def test_expired_tokens_rejected(emulator: EmulatorServer, api: requests.Session) -> None:
    emulator.expire_tokens()

    response = api.get(crm(emulator, "Contacts/5725767000000411001"), timeout=10)

    assert response.json()["code"] == "INVALID_TOKEN"


def test_oldest_token_pushed_out(emulator: EmulatorServer) -> None:
    emulator.update_settings(max_active_tokens=2)
    oldest = emulator.issue_access_token()
    emulator.issue_access_token()
    emulator.issue_access_token()

    response = requests.get(
        crm(emulator, "Contacts/1"),
        headers={"Authorization": f"Zoho-oauthtoken {oldest}"},
        timeout=10,
    )

    assert response.json()["code"] == "INVALID_TOKEN"


@pytest.mark.parametrize(
    ("path", "method", "status", "code"),
    [
        pytest.param("Contacs", "POST", 400, "INVALID_MODULE", id="unknown module"),
        pytest.param("Contacts/a/b/c", "GET", 404, "INVALID_URL_PATTERN", id="unknown path"),
    ],
)
def test_request_level_errors(
    path: str,
    method: str,
    status: int,
    code: str,
    emulator: EmulatorServer,
    api: requests.Session,
) -> None:
    response = api.request(method, crm(emulator, path), json={"data": [{}]}, timeout=10)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert "data" not in response.json()


def test_fields_metadata(emulator: EmulatorServer, api: requests.Session) -> None:
    response = api.get(crm(emulator, "settings/fields"), params={"module": "SIM_Cards"}, timeout=10)

    fields = {field["api_name"]: field for field in response.json()["fields"]}
    assert fields["Name"]["system_mandatory"] is True
    assert fields["Related_Contact"]["lookup"] == {"module": {"api_name": "Contacts"}}
    assert fields["I_SIM_Card"]["data_type"] == "bigint"


# Token endpoint


def token_request(emulator: EmulatorServer, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "refresh_token": "sandbox-refresh-token",
    }
    form.update(overrides)
    return requests.post(f"{emulator.url}/oauth/v2/token", data=form, timeout=10)


def test_token_success_shape(emulator: EmulatorServer) -> None:
    body = token_request(emulator).json()

    assert sorted(body) == ["access_token", "api_domain", "expires_in", "scope", "token_type"]
    assert body["expires_in"] == 3600
    assert body["api_domain"] == emulator.url
    assert body["token_type"] == "Bearer"


def test_token_params_in_query_string(emulator: EmulatorServer) -> None:
    response = requests.post(
        f"{emulator.url}/oauth/v2/token",
        params={
            "grant_type": "refresh_token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "refresh_token": "sandbox-refresh-token",
        },
        timeout=10,
    )

    assert "access_token" in response.json()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"client_secret": "wrong"}, "invalid_client", id="wrong secret"),
        pytest.param({"refresh_token": "wrong"}, "invalid_code", id="wrong refresh token"),
        pytest.param({"grant_type": "password"}, "unsupported_grant_type", id="other grant"),
    ],
)
def test_token_errors_with_http_200(
    overrides: dict[str, str], error: str, emulator: EmulatorServer
) -> None:
    response = token_request(emulator, **overrides)

    assert response.status_code == 200
    assert response.json() == {"error": error}


def test_token_throttle_body(emulator: EmulatorServer) -> None:
    emulator.update_settings(token_limit_per_window=2)
    token_request(emulator)
    token_request(emulator)

    body = token_request(emulator).json()

    assert body["error"] == "Access Denied"
    assert body["status"] == "failure"
    assert "access_token" not in body


def test_legacy_token_shape(emulator: EmulatorServer) -> None:
    emulator.update_settings(legacy_token_shape=True)

    body = token_request(emulator).json()

    assert body["expires_in_sec"] == 3600
    assert body["expires_in"] == 3600000


def test_token_log_has_no_secrets(emulator: EmulatorServer) -> None:
    token_request(emulator)

    entry = emulator.request_log("token")[0]

    assert "sandbox-secret" not in repr(entry)
    assert entry["grant_type"] == "refresh_token"


# Concurrency limit


def test_concurrency_limit_returns_429(emulator: EmulatorServer) -> None:
    # Each request stays in flight for 3 s, so the three started together overlap.
    emulator.update_settings(concurrency_limit=1, latency_seconds=3.0)
    token = emulator.issue_access_token()
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def call() -> None:
        barrier.wait()
        response = requests.get(
            crm(emulator, "Contacts/5725767000000411001"),
            headers={"Authorization": f"Zoho-oauthtoken {token}"},
            timeout=10,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses.count(204) == 1
    assert statuses.count(429) == 2
