"""The emulator's control API, persistence, search index and command line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from engine.emulator import EmulatorServer
from engine.emulator.criteria import Condition, CriteriaError, Group, parse_criteria
from engine.emulator.store import RecordStore

REPO_ROOT = Path(__file__).resolve().parents[2]


def control(
    emulator: EmulatorServer, method: str, path: str, body: object = None
) -> requests.Response:
    return requests.request(method, f"{emulator.url}/__emulator/{path}", json=body, timeout=10)


def test_settings_read_and_changed(emulator: EmulatorServer) -> None:
    changed = control(emulator, "PATCH", "settings", {"search_lag_seconds": 5})

    assert changed.status_code == 200
    assert changed.json()["search_lag_seconds"] == 5
    assert emulator.settings.search_lag_seconds == 5
    assert control(emulator, "GET", "settings").json()["token_expires_in"] == 3600


def test_unknown_setting_rejected(emulator: EmulatorServer) -> None:
    response = control(emulator, "PATCH", "settings", {"search_lag": 5})

    assert response.status_code == 400
    assert response.json() == {"error": "unknown setting(s): search_lag"}


def test_fault_over_http(emulator: EmulatorServer) -> None:
    created = control(
        emulator,
        "POST",
        "faults",
        {
            "operation": "token",
            "status": 503,
            "count": 1,
            "body": {"code": "INTERNAL_ERROR", "details": {}, "message": "down", "status": "error"},
        },
    )
    first = requests.post(f"{emulator.url}/oauth/v2/token", timeout=10)
    second = requests.post(f"{emulator.url}/oauth/v2/token", timeout=10)

    assert created.status_code == 201
    assert first.status_code == 503
    assert second.status_code == 200
    assert control(emulator, "GET", "faults").json() == {"faults": []}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"kind": "explode"},
            'fault kind must be one of status, timeout, drop, got "explode"',
            id="unknown kind",
        ),
        pytest.param(
            {"count": 0}, "fault count must be an integer of at least 1, got 0", id="zero count"
        ),
        pytest.param(
            {"count": "2"},
            'fault count must be an integer of at least 1, got "2"',
            id="count as text",
        ),
        pytest.param(
            {"count": True},
            "fault count must be an integer of at least 1, got true",
            id="count as boolean",
        ),
        pytest.param({"statuz": 500}, "unknown fault key(s): statuz", id="misspelled key"),
        pytest.param(
            {"status": "abc"},
            'fault status must be an HTTP status code from 100 to 599, got "abc"',
            id="status as text",
        ),
        pytest.param(
            {"status": 99},
            "fault status must be an HTTP status code from 100 to 599, got 99",
            id="status below 100",
        ),
        pytest.param(
            {"status": 600},
            "fault status must be an HTTP status code from 100 to 599, got 600",
            id="status above 599",
        ),
        pytest.param(
            {"kind": "timeout", "hold_seconds": "x"},
            'fault hold_seconds must be a number of seconds from 0 to 86400, got "x"',
            id="hold seconds as text",
        ),
        pytest.param(
            {"kind": "timeout", "hold_seconds": -1},
            "fault hold_seconds must be a number of seconds from 0 to 86400, got -1",
            id="negative hold seconds",
        ),
        pytest.param(
            {"kind": "timeout", "hold_seconds": 1e308},
            "fault hold_seconds must be a number of seconds from 0 to 86400, got 1e+308",
            id="huge hold seconds",
        ),
        pytest.param(
            {"kind": "timeout", "hold_seconds": 10**400},
            "fault hold_seconds must be a number of seconds from 0 to 86400, got "
            + str(10**400)[:60]
            + "...",
            id="integer beyond float range",
        ),
        pytest.param(
            {"operation": "delete"},
            "fault operation must be one of token, insert, update, upsert, get, "
            'search, fields or null, got "delete"',
            id="unknown operation",
        ),
        pytest.param(
            {"body": "x"},
            'fault body must be a JSON object, an array or null, got "x"',
            id="body as text",
        ),
        pytest.param(
            {"headers": {"Retry-After": 30}},
            'fault headers must map header names to single-line strings, got {"Retry-After": 30}',
            id="header value not text",
        ),
        pytest.param(
            {"headers": {"X": "a\r\nSet-Cookie: b"}},
            "fault headers must map header names to single-line strings, "
            'got {"X": "a\\r\\nSet-Cookie: b"}',
            id="header with line break",
        ),
        pytest.param(
            {"text": 5}, "fault text must be a string or null, got 5", id="text not a string"
        ),
        pytest.param(
            [{"status": 500}],
            'the body must be a JSON object, got [{"status": 500}]',
            id="array body",
        ),
    ],
)
def test_invalid_fault_rejected(spec: object, message: str, emulator: EmulatorServer) -> None:
    response = control(emulator, "POST", "faults", spec)

    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert control(emulator, "GET", "faults").json() == {"faults": []}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"latency_seconds": -5},
            "setting latency_seconds must be a number of seconds from 0 to 86400, got -5",
            id="negative latency",
        ),
        pytest.param(
            {"search_lag_seconds": "1"},
            'setting search_lag_seconds must be a number of seconds from 0 to 86400, got "1"',
            id="search lag as text",
        ),
        pytest.param(
            {"concurrency_limit": "x"},
            'setting concurrency_limit must be an integer of at least 0 or null, got "x"',
            id="concurrency limit as text",
        ),
        pytest.param(
            {"concurrency_limit": 2.5},
            "setting concurrency_limit must be an integer of at least 0 or null, got 2.5",
            id="fractional concurrency limit",
        ),
        pytest.param(
            {"token_expires_in": 0},
            "setting token_expires_in must be an integer of at least 1, got 0",
            id="zero token lifetime",
        ),
        pytest.param(
            {"omit_api_domain": "yes"},
            'setting omit_api_domain must be true or false, got "yes"',
            id="flag as text",
        ),
        pytest.param(
            {"max_active_tokens": None},
            "setting max_active_tokens must be an integer of at least 1, got null",
            id="null max active tokens",
        ),
        pytest.param(
            {"latency_seconds": 1, "concurrency_limit": "x"},
            'setting concurrency_limit must be an integer of at least 0 or null, got "x"',
            id="one invalid value among valid ones",
        ),
        pytest.param([1], "the body must be a JSON object, got [1]", id="array body"),
    ],
)
def test_invalid_setting_rejected(changes: object, message: str, emulator: EmulatorServer) -> None:
    before = control(emulator, "GET", "settings").json()

    response = control(emulator, "PATCH", "settings", changes)

    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert control(emulator, "GET", "settings").json() == before


def test_settings_accept_null_limits(emulator: EmulatorServer) -> None:
    response = control(
        emulator,
        "PATCH",
        "settings",
        {"concurrency_limit": None, "token_limit_per_window": None, "latency_seconds": 0.5},
    )

    assert response.status_code == 200
    assert response.json()["concurrency_limit"] is None
    assert response.json()["token_limit_per_window"] is None
    assert response.json()["latency_seconds"] == 0.5


def test_log_records_and_reset(emulator: EmulatorServer) -> None:
    token = emulator.issue_access_token()
    requests.post(
        f"{emulator.url}/crm/v8/Contacts",
        json={"data": [{"Last_Name": "A"}]},
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
        timeout=10,
    )

    log = control(emulator, "GET", "log").json()["requests"]
    records = control(emulator, "GET", "records/Contacts").json()["data"]
    reset = control(emulator, "POST", "reset")

    assert [entry["operation"] for entry in log] == ["token", "insert"]
    assert log[1]["status"] == 201
    assert "Zoho-oauthtoken" not in json.dumps(log)
    assert [record["Last_Name"] for record in records] == ["A"]
    assert reset.status_code == 200
    assert emulator.records("Contacts") == []
    assert emulator.request_log() == []


def test_tokens_expire_and_revoke_over_http(emulator: EmulatorServer) -> None:
    token = emulator.issue_access_token()

    control(emulator, "POST", "tokens/expire")
    control(emulator, "POST", "tokens/revoke")
    rejected = requests.get(
        f"{emulator.url}/crm/v8/Contacts/1",
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
        timeout=10,
    )
    refresh = requests.post(
        f"{emulator.url}/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "refresh_token": "sandbox-refresh-token",
        },
        timeout=10,
    )

    assert rejected.json()["code"] == "INVALID_TOKEN"
    assert refresh.json() == {"error": "invalid_code"}


def test_unknown_control_path(emulator: EmulatorServer) -> None:
    response = control(emulator, "GET", "nothing")

    assert response.status_code == 404


def test_state_file_keeps_records(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.sqlite"
    with EmulatorServer(state_file=state_file) as first:
        token = first.issue_access_token()
        created = requests.post(
            f"{first.url}/crm/v8/Contacts",
            json={"data": [{"Last_Name": "Kept", "I_PB": "k"}]},
            headers={"Authorization": f"Zoho-oauthtoken {token}"},
            timeout=10,
        ).json()
    kept_id = created["data"][0]["details"]["id"]

    with EmulatorServer(state_file=state_file) as second:
        token = second.issue_access_token()
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        searched = requests.get(
            f"{second.url}/crm/v8/Contacts/search",
            params={"criteria": "(I_PB:equals:k)"},
            headers=headers,
            timeout=10,
        ).json()
        added = requests.post(
            f"{second.url}/crm/v8/Contacts",
            json={"data": [{"Last_Name": "New"}]},
            headers=headers,
            timeout=10,
        ).json()

    assert [record["id"] for record in searched["data"]] == [kept_id]
    assert int(added["data"][0]["details"]["id"]) > int(kept_id)


def test_search_index_catches_up() -> None:
    now = [100.0]
    store = RecordStore(clock=lambda: now[0])
    store.put("Contacts", {"id": "1", "I_PB": "old"}, search_lag_seconds=0)
    now[0] = 101.0
    store.put("Contacts", {"id": "1", "I_PB": "new"}, search_lag_seconds=30)

    before = store.searchable("Contacts")
    now[0] = 131.0
    after = store.searchable("Contacts")

    assert [record["I_PB"] for record in before] == ["old"]
    assert [record["I_PB"] for record in after] == ["new"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(r"(A:equals:x\,y)", Condition("A", "equals", "x,y"), id="escaped comma"),
        pytest.param(r"(A:equals:c\\d)", Condition("A", "equals", "c\\d"), id="escaped backslash"),
        pytest.param("(A:equals:a:b)", Condition("A", "equals", "a:b"), id="colon in value"),
        pytest.param(
            "((A:equals:1)and(B:starts_with:2))",
            Group("and", (Condition("A", "equals", "1"), Condition("B", "starts_with", "2"))),
            id="and group",
        ),
    ],
)
def test_parse_criteria(text: str, expected: Condition | Group) -> None:
    assert parse_criteria(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("((A:equals:1)and(B:equals:2)or(C:equals:3))", id="mixed joiners"),
        pytest.param("(A:equals:1)extra", id="trailing text"),
        pytest.param("(:equals:1)", id="missing field"),
    ],
)
def test_parse_criteria_rejects(text: str) -> None:
    with pytest.raises(CriteriaError):
        parse_criteria(text)


def test_command_line_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from engine.cli import main; sys.exit(main())",
            "emulator",
            "--port",
            "0",
            "--search-lag",
            "2",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.rsplit(" ", 1)[-1].strip()
        settings = requests.get(f"{url}/__emulator/settings", timeout=10).json()
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert first_line.startswith("Zoho CRM emulator listening on http://127.0.0.1:")
    assert settings["search_lag_seconds"] == 2.0
    assert process.returncode == 0


def test_restarted_server_keeps_saving(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.sqlite"
    server = EmulatorServer(state_file=state_file)
    for name in ("Before restart", "After restart"):
        server.start()
        token = server.issue_access_token()
        requests.post(
            f"{server.url}/crm/v8/Contacts",
            json={"data": [{"Last_Name": name}]},
            headers={"Authorization": f"Zoho-oauthtoken {token}"},
            timeout=10,
        )
        server.stop()

    with EmulatorServer(state_file=state_file) as reopened:
        names = sorted(record["Last_Name"] for record in reopened.records("Contacts"))

    assert names == ["After restart", "Before restart"]


@pytest.mark.parametrize(
    ("fault", "latency_seconds"),
    [
        pytest.param(None, 30.0, id="requests waiting out latency"),
        pytest.param(
            {"kind": "timeout", "hold_seconds": 30.0, "count": 40},
            0.0,
            id="requests held by a timeout fault",
        ),
    ],
)
def test_stop_answers_received_requests(
    fault: dict[str, object] | None, latency_seconds: float
) -> None:
    # Two worker threads and 40 requests: most are still queued when stop() is called.
    emulator = EmulatorServer(threads=2).start()
    statuses: list[int | str] = []
    try:
        emulator.update_settings(latency_seconds=latency_seconds)
        token = emulator.issue_access_token()
        if fault is not None:
            emulator.add_fault(operation="get", **fault)

        def call() -> None:
            try:
                response = requests.get(
                    f"{emulator.url}/crm/v8/Contacts/5725767000000411001",
                    headers={"Authorization": f"Zoho-oauthtoken {token}"},
                    timeout=60,
                )
                statuses.append(response.status_code)
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)

        threads = [threading.Thread(target=call) for _ in range(40)]
        for thread in threads:
            thread.start()
        # The waitress task queue is read directly: it is the only sign that a request was
        # received but no worker has started it.
        while len(emulator._server.task_dispatcher.queue) < 38:
            time.sleep(0.01)
    finally:
        emulator.stop()
    for thread in threads:
        thread.join()

    assert statuses == [204] * 40
