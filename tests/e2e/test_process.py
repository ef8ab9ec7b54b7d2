"""The service as a real process: graceful shutdown, log files, sandbox quick start, bad start."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.cli import serve
from engine.config import Settings
from engine.emulator import EmulatorServer

from .conftest import API_TOKEN, load_example

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60


class ServiceProcess:
    """`python server.py` in a subprocess, with its output lines collected by a thread."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str) -> re.Match[str]:
        """Return the first output line matching `pattern`; fail if the process ends first."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matched {pattern!r}; output:\n{''.join(self.output)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


def service_env(emulator: EmulatorServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZOHO_CRM_")}
    env.update(
        {
            "NODE_ENV": "production",
            "HOST": "127.0.0.1",
            "PORT": "0",
            "API_TOKEN": API_TOKEN,
            "ZOHO_CRM_ACCOUNTS_URL": emulator.url,
            "ZOHO_CRM_API_DOMAIN": emulator.url,
            "ZOHO_CRM_CLIENT_ID": emulator.state.client_id,
            "ZOHO_CRM_CLIENT_SECRET": emulator.state.client_secret,
            "ZOHO_CRM_REFRESH_TOKEN": emulator.state.refresh_token,
            "ZOHO_CRM_TOKEN_FILE": str(tmp_path / "token.json"),
            "JOURNAL_PATH": str(tmp_path / "journal.sqlite3"),
            "LOCK_DIR": str(tmp_path / "locks"),
            "LOG_DIR": str(tmp_path / "logs"),
            "SHUTDOWN_TIMEOUT_SECONDS": "60",
            **extra,
        }
    )
    return env


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


def start_service(env: dict[str, str]) -> tuple[ServiceProcess, str]:
    service = ServiceProcess(env, "--env-file", os.devnull)
    match = service.wait_for(r'"message": "listening".*"url": "(http://[^"]+)"')
    return service, match.group(1)


def post(url: str, body: Any, **headers: str) -> requests.Response:
    return requests.post(
        f"{url}/process-event",
        json=body,
        headers={"Authorization": f"Bearer {API_TOKEN}", **headers},
        timeout=60,
    )


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_finishes_in_flight_event_then_exits_0(
    emulator: EmulatorServer, tmp_path: Path, signum: signal.Signals
) -> None:
    service, url = start_service(service_env(emulator, tmp_path))
    try:
        # Each Zoho call now takes 1.5 s, so the event is in flight when the signal arrives.
        emulator.update_settings(latency_seconds=1.5)
        answers: list[requests.Response] = []
        sender = threading.Thread(
            target=lambda: answers.append(post(url, load_example("sim-updated.json")))
        )
        sender.start()
        while not emulator.request_log():
            time.sleep(0.05)

        service.process.send_signal(signum)
        service.wait_for(r"shutting down: no longer accepting connections")
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/health", timeout=5)
        sender.join(timeout=60)
        exit_code = service.process.wait(timeout=60)
    finally:
        service.stop()

    assert exit_code == 0
    assert len(answers) == 1
    assert answers[0].status_code == 202
    assert answers[0].json()["outcome"] == "processed"
    assert len(emulator.records("Contacts")) == 1
    assert len(emulator.records("SIM_Cards")) == 1


@pytest.mark.slow
def test_log_files_have_ids_and_summary(emulator: EmulatorServer, tmp_path: Path) -> None:
    service, url = start_service(service_env(emulator, tmp_path))
    try:
        event = load_example("sim-updated.json")
        post(url, event, **{"X-B3-TraceId": "trace-e2e-1", "X-Request-Id": "unique-e2e-1"})
        bad = dict(event, event_id="8a0e8c4c-3b8f-4a8e-9c7e-2f7d7f0b9a11")
        emulator.revoke_refresh_token()
        emulator.expire_tokens()
        post(url, bad, **{"X-B3-TraceId": "trace-e2e-2"})
        service.process.send_signal(signal.SIGTERM)
        service.process.wait(timeout=60)
    finally:
        service.stop()

    combined = read_json_lines(tmp_path / "logs" / "combined.log")
    errors = read_json_lines(tmp_path / "logs" / "error.log")
    summary = [line for line in combined if line["message"] == "event processed"]
    access = [line for line in combined if line["logger"] == "engine.service.access"]
    assert len(summary) == 1
    assert summary[0]["request_id"] == "trace-e2e-1"
    assert summary[0]["unique_id"] == "unique-e2e-1"
    assert summary[0]["event_id"] == event["event_id"]
    assert summary[0]["event_type"] == "SIM/Updated"
    assert summary[0]["outcome"] == "processed"
    assert summary[0]["zoho_calls"] == 2
    assert [line["status"] for line in access] == [202, 500]
    assert all(line["level"] == "error" for line in errors)
    assert [line["message"] for line in errors if line["message"] == "event failed"] == [
        "event failed"
    ]
    failed = next(line for line in errors if line["message"] == "event failed")
    assert failed["request_id"] == "trace-e2e-2"
    assert failed["event_id"] == bad["event_id"]
    text = (tmp_path / "logs" / "combined.log").read_text()
    assert API_TOKEN not in text
    assert emulator.state.client_secret not in text
    assert emulator.state.refresh_token not in text
    assert "Olena" not in text
    assert "Koval" not in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "given_token",
    [
        pytest.param(None, id="generated token"),
        pytest.param("operator-token-0123456789abcdef", id="token set by the operator"),
    ],
)
def test_sandbox_quick_start_prints_working_curl(tmp_path: Path, given_token: str | None) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZOHO_CRM_")}
    env.pop("API_TOKEN", None)
    env.update(
        {
            "PORT": "0",
            "JOURNAL_PATH": str(tmp_path / "journal.sqlite3"),
            "LOCK_DIR": str(tmp_path / "locks"),
            "LOG_DIR": str(tmp_path / "logs"),
            "ZOHO_CRM_TOKEN_FILE": str(tmp_path / "token.json"),
        }
    )
    if given_token is not None:
        env["API_TOKEN"] = given_token
    service = ServiceProcess(env, "--sandbox", "--env-file", os.devnull)
    try:
        curl_line = service.wait_for(r"^\s+(curl -sS -X POST .*)$").group(1)
        records_url = service.wait_for(r"curl -sS (http://\S+/__emulator/records/Contacts)")
        # A shell runs the line, as for a user who copies it, so `$API_TOKEN` expands.
        sent = subprocess.run(
            ["bash", "-c", curl_line],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        contacts = requests.get(records_url.group(1), timeout=10).json()["data"]
        service.process.send_signal(signal.SIGINT)
        exit_code = service.process.wait(timeout=60)
    finally:
        service.stop()

    assert sent.returncode == 0
    assert json.loads(sent.stdout)["outcome"] == "processed"
    assert [contact["I_PB"] for contact in contacts] == ["79123456789@msisdn"]
    assert exit_code == 0
    if given_token is not None:
        assert given_token not in "".join(service.output)
        assert '"Authorization: Bearer $API_TOKEN"' in curl_line


def listening_addresses(port: int) -> list[str]:
    """Return the IPv4 addresses with a socket listening on `port`, from /proc/net/tcp."""
    addresses = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            addresses.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


NO_CREDENTIALS_WARNING = (
    r"WARN .*no Zoho credentials are configured, so sandbox mode started: events go to an "
    r"in-memory Zoho CRM emulator"
)
HOST_OVERRIDDEN = r"WARN .*HOST='0\.0\.0\.0' is overridden with 127\.0\.0\.1"
HOST_OPTION_OVERRIDDEN = r"WARN .*--host 0\.0\.0\.0 is overridden with 127\.0\.0\.1"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc/net/tcp")
@pytest.mark.parametrize(
    ("host", "options", "warnings"),
    [
        # Configuration warnings come before the sandbox warning, and the --host one after it.
        pytest.param("0.0.0.0", (), [HOST_OVERRIDDEN, NO_CREDENTIALS_WARNING], id="HOST"),
        pytest.param(
            "",
            ("--host", "0.0.0.0"),
            [NO_CREDENTIALS_WARNING, HOST_OPTION_OVERRIDDEN],
            id="--host",
        ),
    ],
)
def test_no_credentials_starts_sandbox_on_loopback(
    tmp_path: Path, host: str, options: tuple[str, ...], warnings: list[str]
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZOHO_CRM_")}
    for name in ("API_TOKEN", "NODE_ENV", "APP_ENV", "SANDBOX"):
        env.pop(name, None)
    env.update({"HOST": host, "PORT": "0", "LOG_DIR": str(tmp_path / "logs")})
    service = ServiceProcess(env, "--env-file", os.devnull, *options)
    try:
        for pattern in warnings:
            service.wait_for(pattern)
        # The sandbox help, which starts with the same warning, comes next, then the server's
        # "listening" line.
        service.wait_for(r"^WARNING: no Zoho credentials are configured, so events go to an")
        curl_line = service.wait_for(r"^\s+(curl -sS -X POST .*)$").group(1)
        url = service.wait_for(r"listening  url=(http://\S+)").group(1)
        port = int(url.rsplit(":", 1)[1])
        addresses = listening_addresses(port)
        sent = subprocess.run(
            ["bash", "-c", curl_line],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        service.process.send_signal(signal.SIGINT)
        exit_code = service.process.wait(timeout=60)
    finally:
        service.stop()

    assert url == f"http://127.0.0.1:{port}"
    assert addresses == ["127.0.0.1"]
    assert json.loads(sent.stdout)["outcome"] == "processed"
    assert exit_code == 0


def sandbox_help(monkeypatch: pytest.MonkeyPatch, sample_event: Path) -> str:
    monkeypatch.setattr(serve, "SAMPLE_EVENT", sample_event)
    settings = Settings(api_token="operator-token-0123456789abcdef", sandbox=True)
    out = io.StringIO()
    serve.print_sandbox_help(settings, "http://0.0.0.0:3000", "http://127.0.0.1:8090", out)
    return out.getvalue()


def test_sandbox_help_without_examples(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = sandbox_help(monkeypatch, tmp_path / "site-packages" / "docs" / "sim-created.json")

    assert "--data @docs/examples/sim-created.json" in text
    assert "this install has no docs/examples/: run it in a repository checkout" in text


def test_sandbox_help_with_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    text = sandbox_help(monkeypatch, serve.SAMPLE_EVENT)

    assert "--data @docs/examples/sim-created.json" in text
    assert "this install has no docs/examples/" not in text
    assert "operator-token-0123456789abcdef" not in text


def copy_mappings(target: Path) -> Path:
    target.mkdir()
    for source in (ROOT / "mappings").glob("*.yaml"):
        (target / source.name).write_text(source.read_text())
    return target


def test_sandbox_emulator_uses_mappings_dir(tmp_path: Path) -> None:
    mappings = copy_mappings(tmp_path / "mappings")
    modules = mappings / "crm-modules.yaml"
    modules.write_text(
        modules.read_text().replace(
            "      IMSI: {type: text, length: 20}\n",
            "      IMSI: {type: text, length: 20}\n      ICCID: {type: text, length: 22}\n",
            1,
        )
    )
    settings = Settings(api_token="operator-token-0123456789abcdef", mappings_dir=mappings)

    emulator, sandboxed = serve._start_emulator(settings, tmp_path / "state")
    try:
        fields = emulator.modules["SIM_Cards"].fields
    finally:
        emulator.stop()

    assert "ICCID" in fields
    assert sandboxed.zoho_api_domain == emulator.url


def test_sandbox_with_invalid_modules_exits_1(tmp_path: Path) -> None:
    mappings = copy_mappings(tmp_path / "mappings")
    (mappings / "crm-modules.yaml").write_text("modules: [not, a, mapping\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZOHO_CRM_")}
    env.update({"PORT": "0", "LOG_DIR": str(tmp_path / "logs"), "MAPPINGS_DIR": str(mappings)})

    finished = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--sandbox", "--env-file", os.devnull],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert "crm-modules.yaml" in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({"PORT": "eighty"}, "PORT='eighty' is not an integer", id="bad port"),
        pytest.param({"API_TOKEN": ""}, "API_TOKEN is missing", id="missing token in production"),
        pytest.param(
            {"API_TOKEN": "nsps-tökén-0123456789"},
            "API_TOKEN has a character that is not printable ASCII",
            id="token not ASCII",
        ),
        pytest.param(
            {
                "ZOHO_CRM_CLIENT_ID": "",
                "ZOHO_CRM_CLIENT_SECRET": "",
                "ZOHO_CRM_REFRESH_TOKEN": "",
            },
            "ZOHO_CRM_CLIENT_ID is missing",
            id="no credentials in production",
        ),
        pytest.param(
            {"NODE_ENV": "development", "ZOHO_CRM_REFRESH_TOKEN": ""},
            "ZOHO_CRM_REFRESH_TOKEN is missing",
            id="refresh token missing in development",
        ),
    ],
)
def test_invalid_configuration_exits_2(
    emulator: EmulatorServer, tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    env = service_env(emulator, tmp_path, **extra)

    finished = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--env-file", os.devnull],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert expected in finished.stderr
    assert emulator.state.client_secret not in finished.stderr


@pytest.mark.parametrize(
    ("extra", "options", "expected"),
    [
        pytest.param(
            {"HOST": "-1"}, (), "HOST='-1' is not an IP address or host name", id="HOST -1"
        ),
        pytest.param(
            {"HOST": "999.1.1.1"},
            (),
            "HOST='999.1.1.1' is not an IP address or host name",
            id="HOST octet over 255",
        ),
        pytest.param(
            {},
            ("--host", "-1"),
            "--host='-1' is not an IP address or host name",
            id="--host -1",
        ),
        pytest.param(
            {}, ("--port", "70000"), "'70000' is not a port from 0 to 65535", id="--port 70000"
        ),
    ],
)
def test_invalid_listen_address_exits_2(
    emulator: EmulatorServer,
    tmp_path: Path,
    extra: dict[str, str],
    options: tuple[str, ...],
    expected: str,
) -> None:
    env = service_env(emulator, tmp_path, **extra)

    finished = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--env-file", os.devnull, *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert expected in finished.stderr
    assert "Traceback" not in finished.stderr


# Runs server.py with a resolver that finds no address for one name, because tests send
# nothing to a name server.
UNRESOLVED_NAME_SERVER = """
import runpy, socket, sys
real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host == "no-such-host.invalid":
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return real_getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
sys.argv = ["server.py", *sys.argv[1:]]
runpy.run_path("server.py", run_name="__main__")
"""


def test_unresolved_host_exits_3(emulator: EmulatorServer, tmp_path: Path) -> None:
    env = service_env(emulator, tmp_path, HOST="no-such-host.invalid")

    finished = subprocess.run(
        [sys.executable, "-c", UNRESOLVED_NAME_SERVER, "--env-file", os.devnull],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 3
    assert "cannot listen on no-such-host.invalid:0: the address does not resolve" in (
        finished.stderr
    )
    assert "Traceback" not in finished.stderr


def write_not_a_database(path: Path) -> None:
    path.write_text("this is not an SQLite file\n" * 100)


def write_newer_journal(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 999")
    connection.close()


@pytest.mark.parametrize(
    ("variable", "relative_path", "prepare", "expected"),
    [
        pytest.param(
            "JOURNAL_PATH",
            "a-file/journal.sqlite3",
            None,
            "JOURNAL_PATH='{path}' cannot be opened: a part of the path is a file, not a "
            "directory; set JOURNAL_PATH to a writable path on a local disk",
            id="journal under a regular file",
        ),
        pytest.param(
            "JOURNAL_PATH",
            "journal.sqlite3",
            write_not_a_database,
            "JOURNAL_PATH='{path}' cannot be opened: file is not a database; it is not a "
            "journal, so move the file away or set JOURNAL_PATH to another path",
            id="journal not an SQLite file",
        ),
        pytest.param(
            "JOURNAL_PATH",
            "journal.sqlite3",
            write_newer_journal,
            "journal {path} has schema version 999, newer than",
            id="journal from a newer connector",
        ),
        pytest.param(
            "LOCK_DIR",
            "a-file/locks",
            None,
            "LOCK_DIR='{path}' cannot be opened: a part of the path is a file, not a "
            "directory; set LOCK_DIR to a writable path on a local disk",
            id="lock directory under a regular file",
        ),
    ],
)
def test_unusable_state_path_exits_2(
    emulator: EmulatorServer,
    tmp_path: Path,
    variable: str,
    relative_path: str,
    prepare: Callable[[Path], None] | None,
    expected: str,
) -> None:
    (tmp_path / "a-file").write_text("a regular file, not a directory\n")
    path = tmp_path / relative_path
    if prepare is not None:
        prepare(path)
    env = service_env(emulator, tmp_path, **{variable: str(path)})

    finished = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--env-file", os.devnull],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert expected.format(path=path) in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a directory without write bits")
def test_read_only_lock_dir_exits_2(emulator: EmulatorServer, tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o500)
    env = service_env(emulator, tmp_path, LOCK_DIR=str(lock_dir))

    finished = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--env-file", os.devnull],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert f"LOCK_DIR='{lock_dir}' cannot be opened: Permission denied" in finished.stderr


def test_invalid_mappings_exit_1_with_findings(emulator: EmulatorServer, tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    for source in (ROOT / "mappings").glob("*.yaml"):
        (mappings / source.name).write_text(source.read_text())
    plans = mappings / "action-plans.yaml"
    plans.write_text(plans.read_text().replace("write: contact", "write: contcat", 1))
    env = service_env(emulator, tmp_path, MAPPINGS_DIR=str(mappings))

    finished = subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--env-file", os.devnull],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert "action-plans.yaml" in finished.stderr
    assert "contcat" in finished.stderr
    assert "not serving, the mapping files have" in finished.stderr


def test_port_in_use_exits_3(emulator: EmulatorServer, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = service_env(emulator, tmp_path, PORT=str(port))

        finished = subprocess.run(
            [sys.executable, str(ROOT / "server.py"), "--env-file", os.devnull],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert finished.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stderr
