"""OAuth tokens: single-flight refresh, expiry, data centers, token file, endpoint errors."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from engine.emulator import EmulatorServer
from engine.errors import (
    ZohoAuthError,
    ZohoRateLimitError,
    ZohoRequestError,
    ZohoUnavailableError,
)
from engine.zoho import DATA_CENTERS, ZohoClient, ZohoSettings
from engine.zoho.auth import api_domain_problem, parse_token_response, write_private_file
from engine.zoho.retry import AttemptError

from .conftest import SANDBOX_CREDENTIALS, closed_port_url, make_settings

RECORD_ID = "5725767000000411001"
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_twenty_threads_refresh_once(emulator: EmulatorServer, client: ZohoClient) -> None:
    barrier = threading.Barrier(20)
    failures: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            client.get("Contacts", RECORD_ID)
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len(emulator.request_log("token")) == 1
    assert len(emulator.request_log("get")) == 20


def test_invalid_token_refreshes_once(emulator: EmulatorServer, client: ZohoClient) -> None:
    client.get("Contacts", RECORD_ID)
    emulator.expire_tokens()

    assert client.get("Contacts", RECORD_ID) is None
    statuses = [entry["status"] for entry in emulator.request_log("get")]
    assert statuses == [204, 401, 204]
    assert len(emulator.request_log("token")) == 2


class FakeWallClock:
    """Unix time that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "legacy_shape",
    [
        pytest.param(False, id="expires_in in seconds"),
        pytest.param(True, id="legacy expires_in_sec"),
    ],
)
def test_refresh_ahead_of_expiry(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient], legacy_shape: bool
) -> None:
    # Tokens live 3600 s and the margin is 300 s, so at 3400 s the token is too close to its
    # expiry: the client refreshes before calling, without ever getting a 401.
    emulator.update_settings(legacy_token_shape=legacy_shape)
    clock = FakeWallClock()
    client = client_factory(wall_clock=clock)
    client.get("Contacts", RECORD_ID)
    clock.now += 3400

    client.get("Contacts", RECORD_ID)

    assert len(emulator.request_log("token")) == 2
    assert [entry["status"] for entry in emulator.request_log("get")] == [204, 204]


def test_token_reused_until_margin(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient]
) -> None:
    clock = FakeWallClock()
    client = client_factory(wall_clock=clock)
    client.get("Contacts", RECORD_ID)
    clock.now += 3200

    client.get("Contacts", RECORD_ID)

    assert len(emulator.request_log("token")) == 1


@pytest.mark.parametrize(
    ("body", "lifetime"),
    [
        pytest.param(
            {"access_token": "t", "expires_in": 3600, "api_domain": "https://a"},
            3600.0,
            id="current shape in seconds",
        ),
        pytest.param(
            {
                "access_token": "t",
                "expires_in_sec": 3600,
                "expires_in": 3600000,
                "api_domain": "https://a",
            },
            3600.0,
            id="legacy shape in milliseconds",
        ),
        pytest.param(
            {"access_token": "t", "api_domain": "https://a"}, 3600.0, id="no expiry means one hour"
        ),
    ],
)
def test_token_lifetime_parsing(body: dict[str, Any], lifetime: float) -> None:
    token = parse_token_response(body, now=1000.0, previous_api_domain="https://old")

    assert token.expires_at == 1000.0 + lifetime


def test_refresh_without_api_domain_keeps_previous() -> None:
    token = parse_token_response(
        {"access_token": "t", "expires_in": 3600},
        now=0.0,
        previous_api_domain="https://www.zohoapis.eu",
    )

    assert token.api_domain == "https://www.zohoapis.eu"


def test_api_domain_from_token_response_used(emulator: EmulatorServer, client: ZohoClient) -> None:
    # The configured API domain refuses connections, like a US host for an EU org; only
    # the api_domain of the token response reaches the org.
    assert client.get("Contacts", RECORD_ID) is None
    assert client.api_domain == emulator.url


def test_api_domain_kept_when_refresh_omits_it(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    client.get("Contacts", RECORD_ID)
    emulator.update_settings(omit_api_domain=True)
    emulator.expire_tokens()

    assert client.get("Contacts", RECORD_ID) is None
    assert client.api_domain == emulator.url
    assert len(emulator.request_log("token")) == 2


@pytest.mark.parametrize(
    ("credential", "wrong_value", "expected_error", "named"),
    [
        pytest.param(
            "client_secret",
            "wrong-secret",
            ZohoAuthError,
            "ZOHO_CRM_CLIENT_SECRET",
            id="invalid client names client id and secret",
        ),
        pytest.param(
            "client_id",
            "wrong-client",
            ZohoAuthError,
            "ZOHO_CRM_CLIENT_ID",
            id="unknown client names client id",
        ),
        pytest.param(
            "refresh_token",
            "revoked-token",
            ZohoAuthError,
            "ZOHO_CRM_REFRESH_TOKEN",
            id="invalid code names refresh token",
        ),
    ],
)
def test_token_endpoint_errors(
    credential: str,
    wrong_value: str,
    expected_error: type[Exception],
    named: str,
    client_factory: Callable[..., ZohoClient],
) -> None:
    client = client_factory(**{credential: wrong_value})

    with pytest.raises(expected_error) as raised:
        client.get("Contacts", RECORD_ID)

    message = str(raised.value)
    assert named in message
    assert wrong_value not in message
    assert "sandbox-secret" not in message


def test_revoked_refresh_token(emulator: EmulatorServer, client: ZohoClient) -> None:
    client.get("Contacts", RECORD_ID)
    emulator.revoke_refresh_token()
    emulator.expire_tokens()

    with pytest.raises(ZohoAuthError) as raised:
        client.get("Contacts", RECORD_ID)

    assert "ZOHO_CRM_REFRESH_TOKEN" in raised.value.message


def test_token_throttle_is_rate_limit(emulator: EmulatorServer, client: ZohoClient) -> None:
    emulator.update_settings(token_limit_per_window=0)

    with pytest.raises(ZohoRateLimitError) as raised:
        client.get("Contacts", RECORD_ID)

    assert raised.value.retry_after == 60.0
    assert len(emulator.request_log("token")) == 1


ACCESS_DENIED = {
    "error": "Access Denied",
    "error_description": "You have made too many requests continuously. "
    "Please try again after some time.",
    "status": "failure",
}


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        pytest.param(
            {"status": 429, "body": None, "headers": {"Retry-After": "30"}},
            30.0,
            id="429 empty body with Retry-After",
        ),
        pytest.param(
            {"status": 429, "body": {"status": "failure"}}, 60.0, id="429 JSON without error"
        ),
        pytest.param({"status": 429, "body": ACCESS_DENIED}, 60.0, id="429 Access Denied body"),
        pytest.param({"status": 400, "body": ACCESS_DENIED}, 60.0, id="400 Access Denied body"),
        pytest.param(
            {"status": 403, "text": "<html><h1>Access Denied</h1></html>"},
            60.0,
            id="403 Access Denied page",
        ),
    ],
)
def test_token_endpoint_throttle_is_rate_limit(
    emulator: EmulatorServer, client: ZohoClient, fault: dict[str, Any], retry_after: float
) -> None:
    emulator.add_fault(operation="token", **fault)

    with pytest.raises(ZohoRateLimitError) as raised:
        client.get("Contacts", RECORD_ID)

    assert raised.value.retry_after == retry_after
    assert raised.value.status == 429
    assert len(emulator.request_log("token")) == 1
    assert emulator.request_log("get") == []


def test_token_errors_arrive_with_http_200(emulator: EmulatorServer) -> None:
    with pytest.raises(AttemptError):
        parse_token_response({"error": "invalid_client"}, now=0.0, previous_api_domain="x")
    client = ZohoClient(make_settings(emulator, client_secret="wrong"))

    with pytest.raises(ZohoAuthError):
        client.get("Contacts", RECORD_ID)

    assert emulator.request_log("token")[0]["status"] == 200


def test_no_secret_in_logs(
    emulator: EmulatorServer, client: ZohoClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.insert("Contacts", [{"Last_Name": "Private Person", "Email": "p@example.com"}])
    emulator.expire_tokens()
    client.get("Contacts", RECORD_ID)

    forbidden = [
        SANDBOX_CREDENTIALS["client_secret"],
        SANDBOX_CREDENTIALS["refresh_token"],
        "Private Person",
        "p@example.com",
        "1000.",
    ]
    rendered = [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    assert rendered != []
    for text in forbidden:
        assert not any(text in line for line in rendered), text


def test_settings_repr_hides_secrets(emulator: EmulatorServer) -> None:
    settings = make_settings(emulator)

    text = repr(settings)

    assert "sandbox-secret" not in text
    assert "sandbox-refresh-token" not in text
    assert "sandbox-client" not in text


@pytest.mark.parametrize(
    ("data_center", "accounts_url", "api_domain"),
    [
        pytest.param("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu", id="eu"),
        pytest.param(
            "ca",
            "https://accounts.zohocloud.ca",
            "https://www.zohoapis.ca",
            id="canada accounts on zohocloud",
        ),
        pytest.param(
            "AU",
            "https://accounts.zoho.com.au",
            "https://www.zohoapis.com.au",
            id="upper case name",
        ),
    ],
)
def test_settings_for_data_center(data_center: str, accounts_url: str, api_domain: str) -> None:
    settings = ZohoSettings.for_data_center(
        data_center, client_id="c", client_secret="s", refresh_token="r"
    )

    assert settings.accounts_url == accounts_url
    assert settings.api_domain == api_domain
    assert settings.token_url == f"{accounts_url}/oauth/v2/token"


def test_data_centers_listed() -> None:
    assert sorted(DATA_CENTERS) == ["au", "ca", "cn", "eu", "in", "jp", "sa", "us"]


def test_unknown_data_center_rejected() -> None:
    with pytest.raises(ValueError, match="unknown Zoho data center 'uk'"):
        ZohoSettings.for_data_center("uk", client_id="c", client_secret="s", refresh_token="r")


# Token file


def test_token_file_private_and_without_secrets(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient], tmp_path: Path
) -> None:
    token_file = tmp_path / "zoho-token.json"
    client = client_factory(token_file=token_file)

    client.get("Contacts", RECORD_ID)

    mode = stat.S_IMODE(token_file.stat().st_mode)
    content = token_file.read_text(encoding="utf-8")
    assert mode == 0o600
    assert json.loads(content)["api_domain"] == emulator.url
    assert "sandbox-secret" not in content
    assert "sandbox-refresh-token" not in content
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "zoho-token.json",
        "zoho-token.json.lock",
    ]


def test_token_file_reused_by_second_client(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient], tmp_path: Path
) -> None:
    token_file = tmp_path / "zoho-token.json"
    client_factory(token_file=token_file).get("Contacts", RECORD_ID)

    client_factory(token_file=token_file).get("Contacts", RECORD_ID)

    assert len(emulator.request_log("token")) == 1


def test_token_file_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "zoho-token.json"
    token_file.write_text("old", encoding="utf-8")
    os.chmod(token_file, 0o644)

    def fail_replace(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        write_private_file(token_file, "new")
    monkeypatch.undo()

    assert token_file.read_text(encoding="utf-8") == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["zoho-token.json"]
    write_private_file(token_file, "new")
    assert token_file.read_text(encoding="utf-8") == "new"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="not json"),
        pytest.param(
            '{"client_id": "sandbox-client", "access_token": "1000.x", '
            '"expires_at": "abc", "api_domain": "http://127.0.0.1:9"}',
            id="expiry as text",
        ),
        pytest.param(
            '{"client_id": "sandbox-client", "access_token": "1000.x", '
            '"expires_at": Infinity, "api_domain": "http://127.0.0.1:9"}',
            id="infinite expiry",
        ),
        pytest.param("[1]", id="array"),
    ],
)
def test_unreadable_token_file_ignored(
    emulator: EmulatorServer,
    client_factory: Callable[..., ZohoClient],
    tmp_path: Path,
    content: str,
) -> None:
    token_file = tmp_path / "zoho-token.json"
    token_file.write_text(content, encoding="utf-8")

    assert client_factory(token_file=token_file).get("Contacts", RECORD_ID) is None
    assert json.loads(token_file.read_text(encoding="utf-8"))["api_domain"] == emulator.url


PROCESS_SCRIPT = """
import sys
from pathlib import Path
from engine.zoho import ZohoClient, ZohoSettings
settings = ZohoSettings(
    accounts_url=sys.argv[1], api_domain=sys.argv[2], client_id="sandbox-client",
    client_secret="sandbox-secret", refresh_token="sandbox-refresh-token",
    token_file=Path(sys.argv[3]),
)
with ZohoClient(settings) as client:
    client.get("Contacts", "5725767000000411001")
print("done")
"""


@pytest.mark.slow
def test_two_processes_refresh_once(emulator: EmulatorServer, tmp_path: Path) -> None:
    # The first refresh is held for a second, so the second process reaches the lock while
    # the first still holds it, and must then reuse the token the first one wrote.
    emulator.add_fault(operation="token", kind="timeout", hold_seconds=1.0)
    token_file = tmp_path / "zoho-token.json"
    command = [
        sys.executable,
        "-c",
        PROCESS_SCRIPT,
        emulator.url,
        closed_port_url(),
        str(token_file),
    ]

    processes = [
        subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outputs
    assert len(emulator.request_log("token")) == 1
    assert len(emulator.request_log("get")) == 2


@pytest.mark.slow
def test_stuck_token_file_lock_times_out(emulator: EmulatorServer, tmp_path: Path) -> None:
    token_file = tmp_path / "zoho-token.json"
    client = ZohoClient(
        make_settings(
            emulator,
            token_file=token_file,
            max_retries=0,
            connect_timeout_seconds=0.1,
            timeout_seconds=0.1,
        )
    )
    held = FileLock(str(token_file) + ".lock")

    with held, pytest.raises(ZohoUnavailableError) as raised:
        client.get("Contacts", RECORD_ID)

    assert "token file lock" in raised.value.message
    assert emulator.request_log("token") == []


# api_domain of the token response


@pytest.mark.parametrize(
    ("api_domain", "allow_http", "problem"),
    [
        pytest.param("https://www.zohoapis.eu", False, None, id="zoho https domain"),
        pytest.param("https://www.zohoapis.eu/", False, None, id="trailing slash"),
        pytest.param("https://127.0.0.1:8443", False, None, id="https with port"),
        pytest.param("http://127.0.0.1:8090", True, None, id="http for a local accounts server"),
        pytest.param(
            "http://www.zohoapis.eu",
            False,
            "is not an https URL",
            id="http for an https accounts server",
        ),
        pytest.param("ftp://evil.invalid", False, "is not an https URL", id="ftp scheme"),
        pytest.param(
            "ftp://evil.invalid",
            True,
            "is not an http or https URL",
            id="ftp scheme with http allowed",
        ),
        pytest.param("www.zohoapis.eu", False, "is not an https URL", id="no scheme"),
        pytest.param("https://", False, "has no valid host name", id="no host"),
        pytest.param(
            "https://www.zoho apis.eu", False, "has no valid host name", id="space in host"
        ),
        pytest.param(
            "https://www.zohoapis.eu/proxy",
            False,
            "has more than a scheme, host and port",
            id="path",
        ),
        pytest.param(
            "https://user@www.zohoapis.eu",
            False,
            "has more than a scheme, host and port",
            id="user name",
        ),
        pytest.param(
            "https://www.zohoapis.eu?x=1",
            False,
            "has more than a scheme, host and port",
            id="query",
        ),
        pytest.param("https://www.zohoapis.eu:port", False, "is not a URL", id="port not a number"),
    ],
)
def test_api_domain_problem(api_domain: str, allow_http: bool, problem: str | None) -> None:
    assert api_domain_problem(api_domain, allow_http=allow_http) == problem


def test_token_with_invalid_api_domain_rejected() -> None:
    body = {"access_token": "t", "expires_in": 3600, "api_domain": "ftp://evil.invalid"}

    with pytest.raises(AttemptError) as raised:
        parse_token_response(body, now=0.0, previous_api_domain="https://www.zohoapis.eu")

    assert isinstance(raised.value.error, ZohoAuthError)
    assert "'ftp://evil.invalid'" in raised.value.error.message
    assert "ZOHO_CRM_ACCOUNTS_URL" in raised.value.error.message


def test_invalid_api_domain_not_stored(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient], tmp_path: Path
) -> None:
    token_file = tmp_path / "zoho-token.json"
    client = client_factory(token_file=token_file)
    emulator.add_fault(
        operation="token",
        status=200,
        body={"access_token": "1000.bad", "expires_in": 3600, "api_domain": "ftp://evil.invalid"},
    )

    with pytest.raises(ZohoAuthError) as raised:
        client.get("Contacts", RECORD_ID)

    assert "api_domain" in raised.value.message
    assert raised.value.status == 500
    assert not token_file.exists()
    assert emulator.request_log("get") == []
    # The next refresh returns a valid api_domain and is used at once.
    assert client.get("Contacts", RECORD_ID) is None
    assert json.loads(token_file.read_text(encoding="utf-8"))["api_domain"] == emulator.url


def test_token_file_with_invalid_api_domain_ignored(
    emulator: EmulatorServer, client_factory: Callable[..., ZohoClient], tmp_path: Path
) -> None:
    token_file = tmp_path / "zoho-token.json"
    token_file.write_text(
        json.dumps(
            {
                "client_id": SANDBOX_CREDENTIALS["client_id"],
                "access_token": "1000.stored",
                "expires_at": 4_000_000_000.0,
                "api_domain": "ftp://evil.invalid",
            }
        ),
        encoding="utf-8",
    )

    assert client_factory(token_file=token_file).get("Contacts", RECORD_ID) is None

    assert len(emulator.request_log("token")) == 1
    assert json.loads(token_file.read_text(encoding="utf-8"))["api_domain"] == emulator.url


@pytest.mark.parametrize(
    ("lifetime", "shown"),
    [
        pytest.param("abc", "expires_in 'abc'", id="text"),
        pytest.param("inf", "expires_in 'inf'", id="infinity as text"),
        pytest.param(-5, "expires_in '-5'", id="negative"),
        pytest.param(0, "expires_in '0'", id="zero"),
        pytest.param(True, "expires_in 'True'", id="boolean"),
        pytest.param(None, "expires_in 'None'", id="null"),
        pytest.param([3600], "expires_in '[3600]'", id="list"),
    ],
)
def test_invalid_token_lifetime_is_request_error(lifetime: Any, shown: str) -> None:
    body = {"access_token": "t", "expires_in": lifetime, "api_domain": "https://a"}

    with pytest.raises(AttemptError) as raised:
        parse_token_response(body, now=0.0, previous_api_domain="https://a")

    assert isinstance(raised.value.error, ZohoRequestError)
    assert shown in raised.value.error.message


def test_token_lifetime_text_from_endpoint_fails_clearly(
    emulator: EmulatorServer, client: ZohoClient
) -> None:
    emulator.add_fault(
        operation="token",
        status=200,
        body={"access_token": "1000.x", "expires_in": "abc", "api_domain": emulator.url},
    )

    with pytest.raises(ZohoRequestError) as raised:
        client.get("Contacts", RECORD_ID)

    assert "not a positive number of seconds" in raised.value.message
    assert raised.value.status == 500
    assert len(emulator.request_log("token")) == 1
    assert emulator.request_log("get") == []
