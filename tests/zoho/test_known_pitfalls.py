"""Mistakes that Zoho CRM integrations often make, each played against the emulator over HTTP.

Every test here fails if the client made that mistake. Pitfalls that other tests already cover
are listed with those tests in docs/zoho-client.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.emulator import EmulatorServer
from engine.errors import ZohoAuthError, ZohoRequestError, ZohoUnavailableError
from engine.mapping.types import convert_value
from engine.zoho import ZohoClient, ZohoSettings
from engine.zoho.outcomes import MAPPING_HINT

from .conftest import make_settings

RECORD_ID = "5725767000000411001"


# Data centers and tokens


@pytest.mark.parametrize(
    ("data_center", "accounts_url", "api_domain"),
    [
        pytest.param("us", "https://accounts.zoho.com", "https://www.zohoapis.com", id="us"),
        pytest.param("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu", id="eu"),
        pytest.param("in", "https://accounts.zoho.in", "https://www.zohoapis.in", id="in"),
        pytest.param("au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au", id="au"),
        pytest.param("cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn", id="cn"),
        pytest.param("jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp", id="jp"),
        pytest.param("ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca", id="ca"),
        pytest.param("sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa", id="sa"),
    ],
)
def test_each_data_center_has_own_hosts(
    data_center: str, accounts_url: str, api_domain: str
) -> None:
    settings = ZohoSettings.for_data_center(
        data_center, client_id="c", client_secret="s", refresh_token="r"
    )

    assert settings.token_url == f"{accounts_url}/oauth/v2/token"
    assert settings.api_domain == api_domain


def test_invalid_client_points_at_data_center(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    # Zoho returns `invalid_client` with HTTP 200 when the client belongs to another data
    # center than the accounts server.
    client = client_factory(client_secret="wrong-secret")

    with pytest.raises(ZohoAuthError) as raised:
        client.get("Contacts", RECORD_ID)

    assert "ZOHO_CRM_ACCOUNTS_URL" in raised.value.message
    assert "data center" in raised.value.message
    assert [entry["status"] for entry in emulator.request_log("token")] == [200]
    assert emulator.request_log("get") == []


def test_token_pushed_out_by_sibling_replaced(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    # Zoho keeps a limited set of active tokens per refresh token, so a token that is far from
    # expiry can still be rejected once a sibling process has fetched a newer one.
    emulator.update_settings(max_active_tokens=1)
    first = client_factory()
    sibling = client_factory()
    first.get("Contacts", RECORD_ID)
    sibling.get("Contacts", RECORD_ID)

    assert first.get("Contacts", RECORD_ID) is None
    assert [entry["status"] for entry in emulator.request_log("get")] == [204, 204, 401, 204]
    assert len(emulator.request_log("token")) == 3


def test_token_response_without_token_fails_clearly(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    emulator.add_fault(operation="token", status=200, body={"status": "failure"})

    with pytest.raises(ZohoAuthError) as raised:
        client.get("Contacts", RECORD_ID)

    assert "no access_token" in raised.value.message
    assert len(emulator.request_log("token")) == 1
    assert emulator.request_log("get") == []


def test_scope_mismatch_reported_by_readiness(emulator: EmulatorServer, client: ZohoClient) -> None:
    # Zoho mints tokens without checking scopes, so only the API call reveals a missing one.
    emulator.add_fault(
        operation="search",
        status=401,
        body={
            "code": "OAUTH_SCOPE_MISMATCH",
            "details": {},
            "message": "invalid oauth scope to access this URL",
            "status": "error",
        },
    )

    report = client.check_ready("Contacts", "I_PB")

    assert report["ready"] is False
    assert report["token"] == "ok"
    assert report["api"] == "failed"
    assert "OAUTH_SCOPE_MISMATCH" in report["error"]
    assert "ZohoSearch.securesearch.READ" in report["error"]
    assert len(emulator.request_log("token")) == 1


def test_token_file_folder_not_creatable(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient], tmp_path: Path
) -> None:
    # A regular file where the folder should be makes the folder impossible to create, even
    # for root, which ignores permission bits.
    blocker = tmp_path / "state"
    blocker.write_text("not a folder", encoding="utf-8")
    client = client_factory(token_file=blocker / "zoho-token.json")

    with pytest.raises(ZohoUnavailableError) as raised:
        client.get("Contacts", RECORD_ID)
    report = client.check_ready("Contacts", "I_PB")

    assert "ZOHO_CRM_TOKEN_FILE" in raised.value.message
    assert raised.value.retry_after is not None
    assert report["ready"] is False
    assert "ZOHO_CRM_TOKEN_FILE" in report["error"]
    assert emulator.request_log("token") == []


def test_token_file_write_failure_keeps_token(
    emulator: EmulatorServer,
    client_factory: Callable[..., ZohoClient],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A folder at the token file's path cannot be read or replaced by a file, while the lock
    # file next to it can still be created.
    token_file = tmp_path / "zoho-token.json"
    token_file.mkdir()
    client = client_factory(token_file=token_file)

    assert client.get("Contacts", RECORD_ID) is None
    assert client.get("Contacts", RECORD_ID) is None

    assert len(emulator.request_log("token")) == 1
    assert "failed to write the Zoho token file, so the new token is kept in memory only" in (
        caplog.messages
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "zoho-token.json",
        "zoho-token.json.lock",
    ]


# Records and search


def test_multiselect_value_sent_as_array(tmp_path: Path) -> None:
    modules_file = tmp_path / "modules.yaml"
    modules_file.write_text(
        "modules:\n"
        "  Trips:\n"
        "    fields:\n"
        "      Name: {type: text, mandatory: true}\n"
        "      Destination: {type: multiselectpicklist, values: [Paris, Rome]}\n",
        encoding="utf-8",
    )
    with (
        EmulatorServer(modules_path=modules_file) as emulator,
        ZohoClient(make_settings(emulator)) as client,
    ):
        converted = convert_value("Paris", "multiselectpicklist")
        accepted = client.insert("Trips", [{"Name": "Converted", "Destination": converted}])[0]
        rejected = client.insert("Trips", [{"Name": "Raw", "Destination": "Paris"}])[0]
        stored = emulator.records("Trips")

    assert converted == ["Paris"]
    assert accepted.ok is True
    assert [record["Destination"] for record in stored] == [["Paris"]]
    assert rejected.code == "INVALID_DATA"
    assert rejected.api_name == "Destination"
    assert rejected.details["expected_data_type"] == "jsonarray"


def test_tag_objects_returned_unchanged(emulator: EmulatorServer, client: ZohoClient) -> None:
    tags = [{"name": "VIP", "id": "5725767000000500001"}]
    emulator.add_fault(
        operation="search",
        status=200,
        body={
            "data": [{"id": RECORD_ID, "Last_Name": "Tagged", "I_PB": "acc-1", "Tag": tags}],
            "info": {"per_page": 200, "count": 1, "page": 1, "more_records": False},
        },
    )

    found = client.search_exact("Contacts", "I_PB", "acc-1")

    assert [record["id"] for record in found] == [RECORD_ID]
    assert found[0]["Tag"] == tags


def test_unknown_search_field_is_request_error(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    # `createdTime` is not an API name (Zoho's is `Created_Time`), and the `+` of the offset
    # must reach Zoho as `+`, not as a space.
    with pytest.raises(ZohoRequestError) as raised:
        client.search_exact("Contacts", "createdTime", "2021-08-16T14:32:23+05:30")

    searches = emulator.request_log("search")
    assert "INVALID_QUERY" in raised.value.message
    assert MAPPING_HINT in raised.value.message
    assert len(searches) == 1
    assert searches[0]["query"]["criteria"] == "(createdTime:equals:2021-08-16T14:32:23+05:30)"
