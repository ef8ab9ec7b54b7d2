"""`Settings.from_env`: defaults, every variable, and one problem line per invalid value."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.config import ConfigError, Settings

CREDENTIALS = {
    "ZOHO_CRM_CLIENT_ID": "1000.CLIENTID",
    "ZOHO_CRM_CLIENT_SECRET": "client-secret-value",
    "ZOHO_CRM_REFRESH_TOKEN": "1000.refresh-token-value",
}
BASE = {"API_TOKEN": "nsps-token-0123456789", **CREDENTIALS}


def load(environ: dict[str, str], **options: bool) -> Settings:
    return Settings.from_env(environ, env_file=None, **options)


def problems_of(environ: dict[str, str], **options: bool) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as raised:
        load(environ, **options)
    return raised.value.problems


def test_defaults() -> None:
    settings = load(BASE)

    assert settings.app_name == "zoho-crm-connector"
    assert settings.environment == "development"
    assert settings.port == 3000
    assert settings.host == "0.0.0.0"
    assert settings.log_level == logging.INFO
    assert settings.zoho_accounts_url == "https://accounts.zoho.eu"
    assert settings.zoho_api_domain == "https://www.zohoapis.eu"
    assert settings.max_body_bytes == 1048576
    assert settings.cors_origins == ()
    assert settings.sandbox is False
    assert settings.warnings == ()


def test_every_variable_is_read() -> None:
    settings = load(
        {
            **BASE,
            "APP_NAME": "crm-sync",
            "NODE_ENV": "production",
            "HOST": "10.0.0.5",
            "PORT": "8080",
            "LOG_LEVEL": "warn",
            "LOG_DIR": "/var/log/connector",
            "ZOHO_CRM_DC": "ca",
            "ZOHO_CRM_TOKEN_FILE": "/run/zoho/token.json",
            "ZOHO_CRM_TIMEOUT_SECONDS": "12.5",
            "ZOHO_CRM_CONNECT_TIMEOUT_SECONDS": "2",
            "ZOHO_CRM_MAX_CONCURRENCY": "10",
            "ZOHO_CRM_TRIGGER_WORKFLOWS": "false",
            "MAX_BODY_BYTES": "2097152",
            "EVENT_TIME_BUDGET_SECONDS": "15",
            "EVENT_TIME_MAX_SKEW_SECONDS": "3600",
            "JOURNAL_PATH": "/data/journal.db",
            "LOCK_DIR": "/data/locks",
            "MAPPINGS_DIR": "/etc/connector/mappings",
            "SCHEMAS_DIR": "/etc/connector/schemas",
            "SERVER_THREADS": "16",
            "SHUTDOWN_TIMEOUT_SECONDS": "45",
        }
    )

    assert settings.app_name == "crm-sync"
    assert settings.production is True
    assert settings.host == "10.0.0.5"
    assert settings.port == 8080
    assert settings.log_level == logging.WARNING
    assert settings.log_dir == Path("/var/log/connector")
    assert settings.zoho_accounts_url == "https://accounts.zohocloud.ca"
    assert settings.zoho_api_domain == "https://www.zohoapis.ca"
    assert settings.zoho_client_id == "1000.CLIENTID"
    assert settings.zoho_token_file == Path("/run/zoho/token.json")
    assert settings.zoho_timeout_seconds == 12.5
    assert settings.zoho_connect_timeout_seconds == 2.0
    assert settings.zoho_max_concurrency == 10
    assert settings.zoho_trigger_workflows is False
    assert settings.max_body_bytes == 2097152
    assert settings.event_time_budget_seconds == 15.0
    assert settings.event_time_max_skew_seconds == 3600.0
    assert settings.journal_path == Path("/data/journal.db")
    assert settings.lock_dir == Path("/data/locks")
    assert settings.mappings_dir == Path("/etc/connector/mappings")
    assert settings.schemas_dir == Path("/etc/connector/schemas")
    assert settings.server_threads == 16
    assert settings.shutdown_timeout_seconds == 45.0


def test_app_env_is_alias_of_node_env() -> None:
    settings = load({**BASE, "APP_ENV": "production"})

    assert settings.environment == "production"


def test_node_env_wins_over_app_env() -> None:
    settings = load({**BASE, "NODE_ENV": "development", "APP_ENV": "production"})

    assert settings.environment == "development"


def test_explicit_urls_without_data_center() -> None:
    settings = load(
        {
            **BASE,
            "ZOHO_CRM_ACCOUNTS_URL": "https://accounts.zoho.com/",
            "ZOHO_CRM_API_DOMAIN": "https://www.zohoapis.com",
        }
    )

    assert settings.zoho_accounts_url == "https://accounts.zoho.com"
    assert settings.zoho_api_domain == "https://www.zohoapis.com"


URL_ATTRIBUTES = {
    "ZOHO_CRM_ACCOUNTS_URL": "zoho_accounts_url",
    "ZOHO_CRM_API_DOMAIN": "zoho_api_domain",
}


@pytest.mark.parametrize(
    ("variable", "url", "expected"),
    [
        pytest.param(
            "ZOHO_CRM_ACCOUNTS_URL",
            "https://ACCOUNTS.ZOHO.COM/",
            "https://accounts.zoho.com",
            id="accounts URL in capitals with a slash",
        ),
        pytest.param(
            "ZOHO_CRM_ACCOUNTS_URL",
            "HTTPS://accounts.zoho.com",
            "https://accounts.zoho.com",
            id="scheme in capitals",
        ),
        pytest.param(
            "ZOHO_CRM_API_DOMAIN",
            "https://www.ZohoApis.com",
            "https://www.zohoapis.com",
            id="API domain in mixed case",
        ),
    ],
)
def test_data_center_url_ignores_case(variable: str, url: str, expected: str) -> None:
    settings = load({**BASE, "ZOHO_CRM_DC": "us", variable: url})

    assert getattr(settings, URL_ATTRIBUTES[variable]) == expected


ACCOUNTS_EXAMPLE = "such as https://accounts.zoho.eu"
API_EXAMPLE = "such as https://www.zohoapis.eu"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        pytest.param(
            {"ZOHO_CRM_API_DOMAIN": "https://www.zohoapis.com/crm/v8"},
            f"ZOHO_CRM_API_DOMAIN is not a scheme and host only, {API_EXAMPLE}: remove its path",
            id="path",
        ),
        pytest.param(
            {"ZOHO_CRM_API_DOMAIN": "https://www.zohoapis.com/?access_token=leaked-query"},
            f"ZOHO_CRM_API_DOMAIN is not a scheme and host only, {API_EXAMPLE}: remove its query",
            id="query",
        ),
        pytest.param(
            {"ZOHO_CRM_API_DOMAIN": "https://www.zohoapis.com#leaked-fragment"},
            f"ZOHO_CRM_API_DOMAIN is not a scheme and host only, {API_EXAMPLE}: remove its "
            "fragment",
            id="fragment",
        ),
        pytest.param(
            {"ZOHO_CRM_ACCOUNTS_URL": "https://admin:leaked-password@accounts.zoho.eu"},
            f"ZOHO_CRM_ACCOUNTS_URL is not a scheme and host only, {ACCOUNTS_EXAMPLE}: remove "
            "its user info",
            id="user info",
        ),
        pytest.param(
            {"ZOHO_CRM_ACCOUNTS_URL": "https://admin@accounts.zoho.eu/oauth?code=leaked-code#x"},
            f"ZOHO_CRM_ACCOUNTS_URL is not a scheme and host only, {ACCOUNTS_EXAMPLE}: remove "
            "its user info, path, query and fragment",
            id="every extra part",
        ),
        pytest.param(
            {"ZOHO_CRM_ACCOUNTS_URL": "admin:leaked-password@accounts.zoho.eu"},
            "ZOHO_CRM_ACCOUNTS_URL is not an http or https URL",
            id="user info without a scheme",
        ),
        pytest.param(
            {"ZOHO_CRM_API_DOMAIN": "https://www.zohoapis.com:99999"},
            "ZOHO_CRM_API_DOMAIN='https://www.zohoapis.com:99999' has an invalid port: use a "
            "port from 1 to 65535 or none",
            id="port too big",
        ),
        pytest.param(
            {"ZOHO_CRM_API_DOMAIN": "https://www.zoho apis.com"},
            "ZOHO_CRM_API_DOMAIN='https://www.zoho apis.com' has an invalid host name: use a "
            f"URL {API_EXAMPLE}",
            id="space in the host",
        ),
    ],
)
def test_url_with_extra_parts_is_one_problem(overrides: dict[str, str], problem: str) -> None:
    problems = problems_of({**BASE, **overrides})

    assert problems == (problem,)
    assert "leaked" not in problems[0]


def test_url_keeps_emulator_port() -> None:
    settings = load({**BASE, "ZOHO_CRM_API_DOMAIN": "http://127.0.0.1:8090/"})

    assert settings.zoho_api_domain == "http://127.0.0.1:8090"


def test_debug_forces_debug_level() -> None:
    settings = load({**BASE, "LOG_LEVEL": "error", "DEBUG": "true"})

    assert settings.log_level == logging.DEBUG


def test_env_file_fills_missing_variables(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text('API_TOKEN="from-file-0123456789"\nPORT=4000\nAPP_NAME=from-file\n')

    settings = Settings.from_env({**CREDENTIALS, "PORT": "5000"}, env_file=env_file)

    assert settings.api_token == "from-file-0123456789"
    assert settings.port == 5000
    assert settings.app_name == "from-file"


API_TOKEN_NOT_ASCII = (
    "API_TOKEN has a character that is not printable ASCII (a space, a control character or "
    "a non-ASCII letter): an HTTP header carries only ASCII, so NSPS cannot send it; use "
    "letters, digits and - . _ ~ + /"
)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        pytest.param(
            {"API_TOKEN": ""},
            "API_TOKEN is missing: set it to the Bearer token configured in the NSPS handler",
            id="missing api token",
        ),
        pytest.param(
            {"PORT": "http"},
            "PORT='http' is not an integer from 0 to 65535",
            id="port not a number",
        ),
        pytest.param(
            {"PORT": "70000"}, "PORT='70000' is not an integer from 0 to 65535", id="port too big"
        ),
        pytest.param(
            {"NODE_ENV": "staging"},
            "NODE_ENV='staging' is invalid: use one of development, production, test",
            id="unknown environment",
        ),
        pytest.param(
            {"APP_ENV": "staging"},
            "APP_ENV='staging' is invalid: use one of development, production, test",
            id="unknown environment by alias",
        ),
        pytest.param(
            {"LOG_LEVEL": "loud"},
            "LOG_LEVEL='loud' is invalid: use one of error, warn, warning, info, http, verbose, "
            "debug, silly",
            id="unknown log level",
        ),
        pytest.param(
            {"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean: use true or false", id="debug"
        ),
        pytest.param(
            {"ZOHO_CRM_DC": "mars"},
            "ZOHO_CRM_DC='mars' is not a Zoho data center: use one of "
            "au, ca, cn, eu, in, jp, sa, us",
            id="unknown data center",
        ),
        pytest.param(
            {"ZOHO_CRM_DC": "us", "ZOHO_CRM_API_DOMAIN": "https://www.zohoapis.eu"},
            "ZOHO_CRM_API_DOMAIN='https://www.zohoapis.eu' contradicts ZOHO_CRM_DC='us', which "
            "means 'https://www.zohoapis.com': unset one of the two",
            id="url contradicts data center",
        ),
        pytest.param(
            {"ZOHO_CRM_ACCOUNTS_URL": "accounts.zoho.eu"},
            "ZOHO_CRM_ACCOUNTS_URL='accounts.zoho.eu' is not an http or https URL",
            id="url without scheme",
        ),
        pytest.param(
            {"ZOHO_CRM_MAX_CONCURRENCY": "0"},
            "ZOHO_CRM_MAX_CONCURRENCY='0' is not an integer from 1 to 100",
            id="zero concurrency",
        ),
        pytest.param(
            {"ZOHO_CRM_TIMEOUT_SECONDS": "nan"},
            "ZOHO_CRM_TIMEOUT_SECONDS='nan' is not a number from 0.1 to 300.0",
            id="timeout nan",
        ),
        pytest.param(
            {"MAX_BODY_BYTES": "10"},
            "MAX_BODY_BYTES='10' is not an integer from 1024 to 67108864",
            id="body limit too small",
        ),
        pytest.param(
            {"CORS_ORIGINS": "localhost:8080"},
            "CORS_ORIGINS entry 'localhost:8080' is not an origin such as http://localhost:8080",
            id="cors origin without scheme",
        ),
        pytest.param(
            {"NODE_ENV": "production", "CORS_ORIGINS": "https://ops.example"},
            "CORS_ORIGINS is set but NODE_ENV=production: NSPS calls the service server to "
            "server, so CORS stays closed in production; unset CORS_ORIGINS",
            id="cors in production",
        ),
        pytest.param(
            {"ZOHO_CRM_REFRESH_TOKEN": ""},
            "ZOHO_CRM_REFRESH_TOKEN is missing: set it from the Zoho API console self client, "
            "or set SANDBOX=true (serve --sandbox) to use the bundled emulator",
            id="one credential missing",
        ),
        pytest.param(
            {"API_TOKEN": "nsps-tökén-0123456789"},
            API_TOKEN_NOT_ASCII,
            id="token with a non-ASCII letter",
        ),
        pytest.param(
            {"API_TOKEN": "nsps token 0123456789"}, API_TOKEN_NOT_ASCII, id="token with a space"
        ),
        pytest.param(
            {"API_TOKEN": "nsps-token\t0123456789"}, API_TOKEN_NOT_ASCII, id="token with a tab"
        ),
        pytest.param(
            {"EVENT_TIME_MAX_SKEW_SECONDS": "-1"},
            "EVENT_TIME_MAX_SKEW_SECONDS='-1' is not a number from 0.0 to 31622400.0",
            id="negative skew",
        ),
        pytest.param(
            {"SANDBOX": "perhaps"},
            "SANDBOX='perhaps' is not a boolean: use true or false",
            id="sandbox not a boolean",
        ),
    ],
)
def test_invalid_value_is_one_problem(overrides: dict[str, str], problem: str) -> None:
    assert problems_of({**BASE, **overrides}) == (problem,)


def host_invalid(host: str) -> str:
    return (
        f"HOST={host!r} is not an IP address or host name: use an address such as 0.0.0.0, :: "
        "or 127.0.0.1 (IPv6 without brackets), or a name such as localhost"
    )


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("-1", id="negative number"),
        pytest.param("999.1.1.1", id="IPv4 octet over 255"),
        pytest.param("10.0.0", id="three numeric labels"),
        pytest.param("\x01", id="control character"),
        pytest.param("[::1]", id="IPv6 in brackets"),
        pytest.param("host_name", id="underscore"),
        pytest.param("name-.example", id="label ending in a hyphen"),
        pytest.param("a..example", id="empty label"),
        pytest.param("a" * 64 + ".example", id="label over 63 characters"),
        pytest.param("ünicode.example", id="non-ASCII letter"),
        pytest.param("0.0.0.0:3000", id="port in the host"),
    ],
)
def test_invalid_host_is_one_problem(host: str) -> None:
    assert problems_of({**BASE, "HOST": host}) == (host_invalid(host),)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("0.0.0.0", id="IPv4 any"),
        pytest.param("::", id="IPv6 any"),
        pytest.param("::1", id="IPv6 loopback"),
        pytest.param("fe80::1%eth0", id="IPv6 with zone"),
        pytest.param("localhost", id="single label"),
        pytest.param("nan", id="word that parses as a float"),
        pytest.param("1e3", id="label with digits and a letter"),
        pytest.param("connector-1.internal.example.", id="name with trailing dot"),
    ],
)
def test_valid_host_is_kept(host: str) -> None:
    settings = load({**BASE, "HOST": host})

    assert settings.host == host


def test_every_problem_reported_at_once() -> None:
    problems = problems_of({**BASE, "API_TOKEN": "", "PORT": "x", "DEBUG": "x"})

    assert len(problems) == 3


def test_problems_never_show_secrets() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    environ = {
        "NODE_ENV": "production",
        "API_TOKEN": "",
        "ZOHO_CRM_CLIENT_ID": "",
        "ZOHO_CRM_CLIENT_SECRET": secret,
        "ZOHO_CRM_REFRESH_TOKEN": secret,
    }

    with pytest.raises(ConfigError) as raised:
        load(environ)

    assert secret not in str(raised.value)
    assert secret not in repr(raised.value)


def test_settings_repr_hides_secrets() -> None:
    settings = load(BASE)

    assert "nsps-token" not in repr(settings)
    assert "client-secret-value" not in repr(settings)
    assert "refresh-token-value" not in repr(settings)


MISSING_CREDENTIALS = tuple(
    f"{name} is missing: set it from the Zoho API console self client, or set SANDBOX=true "
    "(serve --sandbox) to use the bundled emulator"
    for name in ("ZOHO_CRM_CLIENT_ID", "ZOHO_CRM_CLIENT_SECRET", "ZOHO_CRM_REFRESH_TOKEN")
)


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({}, id="no environment"),
        pytest.param({"NODE_ENV": "development"}, id="development"),
        pytest.param({"NODE_ENV": "test"}, id="test"),
        pytest.param({"NODE_ENV": "production"}, id="production"),
        pytest.param({"SANDBOX": "false"}, id="sandbox false"),
    ],
)
def test_missing_credentials_are_problems(environment: dict[str, str]) -> None:
    problems = problems_of({"API_TOKEN": "nsps-token-0123456789", **environment})

    assert problems == MISSING_CREDENTIALS


@pytest.mark.parametrize(
    ("environ", "options"),
    [
        pytest.param({}, {"sandbox": True}, id="sandbox argument"),
        pytest.param({"SANDBOX": "true"}, {}, id="sandbox variable"),
        pytest.param({"SANDBOX": "1"}, {}, id="sandbox variable as 1"),
        pytest.param({"SANDBOX": "false"}, {"sandbox": True}, id="argument wins over variable"),
    ],
)
def test_sandbox_is_opt_in(environ: dict[str, str], options: dict[str, bool]) -> None:
    settings = load(environ, **options)

    assert settings.sandbox is True
    assert settings.api_token_generated is True
    assert len(settings.api_token) >= 32
    assert settings.host == "127.0.0.1"
    assert settings.warnings == ()


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="no environment"),
        pytest.param({"NODE_ENV": "development"}, id="development"),
        pytest.param({"APP_ENV": "test"}, id="test by alias"),
        pytest.param({"API_TOKEN": "given-token-0123456789"}, id="api token set"),
    ],
)
def test_serve_without_credentials_starts_sandbox(environ: dict[str, str]) -> None:
    settings = load(environ, auto_sandbox=True)

    assert settings.sandbox is True
    assert settings.sandbox_automatic is True
    assert settings.host == "127.0.0.1"
    assert settings.warnings == ()


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("0.0.0.0", id="all addresses"),
        pytest.param("10.0.0.5", id="one address"),
    ],
)
def test_automatic_sandbox_overrides_host(host: str) -> None:
    settings = load({"HOST": host}, auto_sandbox=True)

    assert settings.host == "127.0.0.1"
    assert settings.warnings == (
        f"HOST={host!r} is overridden with 127.0.0.1: sandbox mode started because no Zoho "
        "credential is set, and it listens on the loopback address only; use --sandbox or "
        "SANDBOX=true to listen on HOST",
    )


@pytest.mark.parametrize(
    ("environ", "options"),
    [
        pytest.param({"HOST": "0.0.0.0"}, {"sandbox": True}, id="sandbox argument"),
        pytest.param(
            {"HOST": "0.0.0.0", "SANDBOX": "true"}, {"auto_sandbox": True}, id="sandbox variable"
        ),
        pytest.param(
            {"HOST": "0.0.0.0", "NODE_ENV": "production"},
            {"sandbox": True, "auto_sandbox": True},
            id="sandbox argument in production",
        ),
    ],
)
def test_explicit_sandbox_honours_host(environ: dict[str, str], options: dict[str, bool]) -> None:
    settings = load(environ, **options)

    assert settings.sandbox is True
    assert settings.sandbox_automatic is False
    assert settings.host == "0.0.0.0"
    assert settings.warnings == ()


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        pytest.param({"NODE_ENV": "production"}, 3, id="production"),
        pytest.param({"APP_ENV": "production"}, 3, id="production by alias"),
        pytest.param({"SANDBOX": "false"}, 3, id="sandbox set to false"),
        pytest.param({"ZOHO_CRM_CLIENT_ID": "1000.CLIENTID"}, 2, id="client id only"),
        pytest.param(
            {
                "ZOHO_CRM_CLIENT_ID": "1000.CLIENTID",
                "ZOHO_CRM_CLIENT_SECRET": "client-secret-value",
            },
            1,
            id="refresh token missing",
        ),
    ],
)
def test_serve_without_some_credentials_fails(environ: dict[str, str], missing: int) -> None:
    problems = problems_of({"API_TOKEN": "nsps-token-0123456789", **environ}, auto_sandbox=True)

    assert problems == MISSING_CREDENTIALS[3 - missing :]


def test_sandbox_keeps_given_api_token() -> None:
    settings = load({"API_TOKEN": "given-token-0123456789"}, sandbox=True)

    assert settings.api_token == "given-token-0123456789"
    assert settings.api_token_generated is False


def test_sandbox_from_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SANDBOX=true\n")

    settings = Settings.from_env({}, env_file=env_file)

    assert settings.sandbox is True


def test_explicit_sandbox_in_production() -> None:
    settings = load({"NODE_ENV": "production"}, sandbox=True)

    assert settings.sandbox is True
    assert settings.api_token_generated is True


def test_secrets_optional_for_journal_commands() -> None:
    settings = load({"JOURNAL_PATH": "/data/journal.db"}, require_secrets=False)

    assert settings.journal_path == Path("/data/journal.db")
    assert settings.api_token == ""
    assert settings.sandbox is False
    assert settings.warnings == ()


def test_short_api_token_is_a_warning() -> None:
    settings = load({**BASE, "API_TOKEN": "short"})

    assert len(settings.warnings) == 1
    assert settings.warnings[0].startswith("API_TOKEN is shorter than 16 characters")


def test_env_example_is_valid_once_filled() -> None:
    env_example = Path(__file__).resolve().parents[2] / ".env.example"

    settings = Settings.from_env(BASE, env_file=env_example)

    assert settings.production is True
    assert settings.zoho_accounts_url == "https://accounts.zoho.eu"
    assert settings.warnings == ()
