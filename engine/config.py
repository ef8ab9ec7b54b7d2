"""Service configuration read from environment variables and an optional `.env` file.

The variable names are those of the TypeScript connector this service replaces (`APP_NAME`,
`NODE_ENV`, `PORT`, `LOG_LEVEL`, `DEBUG`, `API_TOKEN`, `ZOHO_CRM_*`), so an existing `.env`
keeps working. Newer settings follow the same style. Variables set in the process environment
win over the `.env` file.

`Settings.from_env` checks every variable and raises one `ConfigError` that lists every problem,
one line each. No message contains the value of a secret.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values

DEFAULT_APP_NAME = "zoho-crm-connector"
DEFAULT_PORT = 3000
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_JOURNAL_PATH = Path("var/journal.sqlite3")
LOOPBACK_HOST = "127.0.0.1"

# An event time further ahead of the clock than this is not used to order events: it would
# make every later event for the same record look stale.
DEFAULT_EVENT_TIME_MAX_SKEW_SECONDS = 86400.0

ENVIRONMENTS = ("development", "production", "test")

# LOG_LEVEL accepts the level names of winston, the logger of the TypeScript connector.
LOG_LEVELS: dict[str, int] = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "http": logging.INFO,
    "verbose": logging.DEBUG,
    "debug": logging.DEBUG,
    "silly": logging.DEBUG,
}

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})

_ZOHO_CREDENTIALS = ("ZOHO_CRM_CLIENT_ID", "ZOHO_CRM_CLIENT_SECRET", "ZOHO_CRM_REFRESH_TOKEN")

T = TypeVar("T")

# One host name label (RFC 1123): letters, digits and inner hyphens, 1 to 63 characters.
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_MAX_HOST_NAME_LENGTH = 253


def _zoho_defaults() -> ModuleType:
    """Return `engine.zoho.settings`, which owns the data centers and the Zoho client defaults.

    It is imported on first use because importing `engine.zoho` loads requests, and the command
    line imports this module to build its parser.
    """
    from engine.zoho import settings

    return settings


class ConfigError(Exception):
    """The configuration is invalid; `problems` has one line per invalid or missing variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Settings:
    """Validated settings of one service process."""

    api_token: str = field(repr=False)
    app_name: str = DEFAULT_APP_NAME
    environment: str = "development"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    log_level: int = logging.INFO
    debug: bool = False
    log_dir: Path = Path("logs")

    zoho_accounts_url: str = field(default_factory=lambda: _zoho_defaults().DEFAULT_ACCOUNTS_URL)
    zoho_api_domain: str = field(default_factory=lambda: _zoho_defaults().DEFAULT_API_DOMAIN)
    zoho_client_id: str = ""
    zoho_client_secret: str = field(default="", repr=False)
    zoho_refresh_token: str = field(default="", repr=False)
    zoho_token_file: Path = Path("var/zoho-token.json")
    zoho_timeout_seconds: float = field(
        default_factory=lambda: _zoho_defaults().DEFAULT_TIMEOUT_SECONDS
    )
    zoho_connect_timeout_seconds: float = field(
        default_factory=lambda: _zoho_defaults().DEFAULT_CONNECT_TIMEOUT_SECONDS
    )
    zoho_max_concurrency: int = field(
        default_factory=lambda: _zoho_defaults().DEFAULT_MAX_CONCURRENCY
    )
    zoho_trigger_workflows: bool = True

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    event_time_budget_seconds: float = 20.0
    event_time_max_skew_seconds: float = DEFAULT_EVENT_TIME_MAX_SKEW_SECONDS
    journal_path: Path = DEFAULT_JOURNAL_PATH
    lock_dir: Path = Path("var/locks")
    mappings_dir: Path | None = None
    schemas_dir: Path | None = None
    cors_origins: tuple[str, ...] = ()
    server_threads: int = 8
    shutdown_timeout_seconds: float = 30.0

    sandbox: bool = False
    """Zoho calls go to the bundled emulator; the caller starts it and fills in its URLs."""

    sandbox_automatic: bool = False
    """Sandbox mode started because no Zoho credential is set; `host` is then 127.0.0.1."""

    api_token_generated: bool = False
    """`API_TOKEN` was not set, so a random one was generated (sandbox mode only)."""

    warnings: tuple[str, ...] = ()
    """Problems that do not stop the service, to be logged at start."""

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: Path | None = Path(".env"),
        *,
        sandbox: bool = False,
        auto_sandbox: bool = False,
        require_secrets: bool = True,
    ) -> Settings:
        """Read and check the settings; raise `ConfigError` listing every problem.

        `environ` defaults to `os.environ`. Values from `env_file` fill only the variables that
        `environ` does not set; a missing file is not an error. Sandbox mode (Zoho calls go to
        the bundled emulator) is on when `sandbox` is true or `SANDBOX` is set to true. Then
        the Zoho credentials are not required and a missing `API_TOKEN` is generated.

        With `auto_sandbox` true (the `serve` command), sandbox mode also starts when none of
        the three Zoho credentials is set, `SANDBOX` is unset and the environment is not
        production. That mode listens on 127.0.0.1 whatever the value of `HOST`, so NSPS in a real
        deployment cannot reach it and keeps retrying instead of getting success for events
        written to an in-memory emulator. Otherwise each missing Zoho credential is a problem.
        With `require_secrets` false, a missing `API_TOKEN` or Zoho credential is no problem,
        for commands that only read the journal.
        """
        variables = _merge_env_file(os.environ if environ is None else environ, env_file)
        reader = _Reader(variables)

        environment = reader.choice("NODE_ENV", ENVIRONMENTS, default="", alias="APP_ENV")
        environment = environment or "development"
        production = environment == "production"

        sandbox_variable = reader.text("SANDBOX")
        sandbox = reader.boolean("SANDBOX", default=False) or sandbox
        missing_credentials = [name for name in _ZOHO_CREDENTIALS if not reader.text(name)]
        sandbox_automatic = (
            auto_sandbox
            and not sandbox
            and not sandbox_variable
            and not production
            and len(missing_credentials) == len(_ZOHO_CREDENTIALS)
        )
        sandbox = sandbox or sandbox_automatic
        if not sandbox and require_secrets:
            for name in missing_credentials:
                reader.problems.append(
                    f"{name} is missing: set it from the Zoho API console self client, "
                    "or set SANDBOX=true (serve --sandbox) to use the bundled emulator"
                )

        api_token = reader.text("API_TOKEN")
        api_token_generated = False
        if not api_token and sandbox:
            api_token = secrets.token_urlsafe(32)
            api_token_generated = True
        elif not api_token:
            if require_secrets:
                reader.problems.append(
                    "API_TOKEN is missing: set it to the Bearer token configured in the NSPS "
                    "handler"
                )
        elif not _is_header_token(api_token):
            reader.problems.append(
                "API_TOKEN has a character that is not printable ASCII (a space, a control "
                "character or a non-ASCII letter): an HTTP header carries only ASCII, so NSPS "
                "cannot send it; use letters, digits and - . _ ~ + /"
            )
        elif len(api_token) < 16:
            reader.warnings.append(
                "API_TOKEN is shorter than 16 characters: use a long random token, for example "
                'the output of `python -c "import secrets; print(secrets.token_urlsafe(32))"`'
            )

        zoho = _zoho_defaults()
        accounts_url, api_domain = _zoho_urls(reader, zoho)
        log_level = reader.choice("LOG_LEVEL", tuple(LOG_LEVELS), default="info")
        debug = reader.boolean("DEBUG", default=False)
        cors_origins = _cors_origins(reader, production)
        default_host = LOOPBACK_HOST if sandbox else "0.0.0.0"  # noqa: S104 - NSPS connects from outside
        host = reader.text("HOST") or default_host
        problem = host_problem("HOST", host)
        if problem is not None:
            reader.problems.append(problem)
            host = default_host
        if sandbox_automatic and host != LOOPBACK_HOST:
            reader.warnings.append(
                f"HOST={host!r} is overridden with {LOOPBACK_HOST}: sandbox mode started "
                "because no Zoho credential is set, and it listens on the loopback address "
                "only; use --sandbox or SANDBOX=true to listen on HOST"
            )
            host = LOOPBACK_HOST

        settings = cls(
            api_token=api_token,
            app_name=reader.text("APP_NAME") or DEFAULT_APP_NAME,
            environment=environment,
            host=host,
            port=reader.integer("PORT", default=DEFAULT_PORT, minimum=0, maximum=65535),
            log_level=logging.DEBUG if debug else LOG_LEVELS[log_level],
            debug=debug,
            log_dir=reader.path("LOG_DIR", default=Path("logs")),
            zoho_accounts_url=accounts_url,
            zoho_api_domain=api_domain,
            zoho_client_id=reader.text("ZOHO_CRM_CLIENT_ID"),
            zoho_client_secret=reader.text("ZOHO_CRM_CLIENT_SECRET"),
            zoho_refresh_token=reader.text("ZOHO_CRM_REFRESH_TOKEN"),
            zoho_token_file=reader.path("ZOHO_CRM_TOKEN_FILE", default=Path("var/zoho-token.json")),
            zoho_timeout_seconds=reader.number(
                "ZOHO_CRM_TIMEOUT_SECONDS",
                default=zoho.DEFAULT_TIMEOUT_SECONDS,
                minimum=0.1,
                maximum=300.0,
            ),
            zoho_connect_timeout_seconds=reader.number(
                "ZOHO_CRM_CONNECT_TIMEOUT_SECONDS",
                default=zoho.DEFAULT_CONNECT_TIMEOUT_SECONDS,
                minimum=0.1,
                maximum=60.0,
            ),
            zoho_max_concurrency=reader.integer(
                "ZOHO_CRM_MAX_CONCURRENCY",
                default=zoho.DEFAULT_MAX_CONCURRENCY,
                minimum=1,
                maximum=100,
            ),
            zoho_trigger_workflows=reader.boolean("ZOHO_CRM_TRIGGER_WORKFLOWS", default=True),
            max_body_bytes=reader.integer(
                "MAX_BODY_BYTES",
                default=DEFAULT_MAX_BODY_BYTES,
                minimum=1024,
                maximum=64 * 1024 * 1024,
            ),
            event_time_budget_seconds=reader.number(
                "EVENT_TIME_BUDGET_SECONDS", default=20.0, minimum=1.0, maximum=600.0
            ),
            event_time_max_skew_seconds=reader.number(
                "EVENT_TIME_MAX_SKEW_SECONDS",
                default=DEFAULT_EVENT_TIME_MAX_SKEW_SECONDS,
                minimum=0.0,
                maximum=366 * 86400.0,
            ),
            journal_path=reader.path("JOURNAL_PATH", default=DEFAULT_JOURNAL_PATH),
            lock_dir=reader.path("LOCK_DIR", default=Path("var/locks")),
            mappings_dir=reader.optional_path("MAPPINGS_DIR"),
            schemas_dir=reader.optional_path("SCHEMAS_DIR"),
            cors_origins=cors_origins,
            server_threads=reader.integer("SERVER_THREADS", default=8, minimum=1, maximum=256),
            shutdown_timeout_seconds=reader.number(
                "SHUTDOWN_TIMEOUT_SECONDS", default=30.0, minimum=0.0, maximum=3600.0
            ),
            sandbox=sandbox,
            sandbox_automatic=sandbox_automatic,
            api_token_generated=api_token_generated,
            warnings=tuple(reader.warnings),
        )

        if reader.problems:
            raise ConfigError(reader.problems)
        return settings


def host_problem(source: str, host: str) -> str | None:
    """Return the problem line when `host` is neither an IP address nor a valid host name.

    The check is syntax only, because a name server may be unreachable when the service
    starts. A valid name that does not resolve fails later, when the server binds. An IPv6
    address is written without brackets, and a host name follows RFC 1123: labels of letters,
    digits and inner hyphens, and a last label that is not all digits, so `999.1.1.1` is
    neither.
    """
    if _is_ip_address(host) or _is_host_name(host):
        return None
    return (
        f"{source}={host!r} is not an IP address or host name: use an address such as 0.0.0.0, "
        ":: or 127.0.0.1 (IPv6 without brackets), or a name such as localhost"
    )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_host_name(host: str) -> bool:
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > _MAX_HOST_NAME_LENGTH:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():
        return False
    return all(_HOST_LABEL.match(label) for label in labels)


def _merge_env_file(environ: Mapping[str, str], env_file: Path | None) -> dict[str, str]:
    variables: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        for name, value in dotenv_values(env_file).items():
            if value is not None:
                variables[name] = value
    variables.update(environ)
    return variables


def _zoho_urls(reader: _Reader, zoho: ModuleType) -> tuple[str, str]:
    """Return the accounts URL and API domain from `ZOHO_CRM_DC` or the two URL variables."""
    accounts_url = reader.url("ZOHO_CRM_ACCOUNTS_URL", example=zoho.DEFAULT_ACCOUNTS_URL)
    api_domain = reader.url("ZOHO_CRM_API_DOMAIN", example=zoho.DEFAULT_API_DOMAIN)
    data_center = reader.text("ZOHO_CRM_DC").lower()
    if not data_center:
        return accounts_url or zoho.DEFAULT_ACCOUNTS_URL, api_domain or zoho.DEFAULT_API_DOMAIN

    if data_center not in zoho.DATA_CENTERS:
        names = ", ".join(sorted(zoho.DATA_CENTERS))
        reader.problems.append(
            f"ZOHO_CRM_DC={data_center!r} is not a Zoho data center: use one of {names}"
        )
        return zoho.DEFAULT_ACCOUNTS_URL, zoho.DEFAULT_API_DOMAIN

    known_accounts_url, known_api_domain = zoho.DATA_CENTERS[data_center]
    # A token minted in one data center is rejected by every other, so a URL that contradicts
    # ZOHO_CRM_DC is an error rather than a silent override.
    for name, configured, expected in (
        ("ZOHO_CRM_ACCOUNTS_URL", accounts_url, known_accounts_url),
        ("ZOHO_CRM_API_DOMAIN", api_domain, known_api_domain),
    ):
        if configured and configured != expected:
            reader.problems.append(
                f"{name}={configured!r} contradicts ZOHO_CRM_DC={data_center!r}, which means "
                f"{expected!r}: unset one of the two"
            )
    return known_accounts_url, known_api_domain


def _cors_origins(reader: _Reader, production: bool) -> tuple[str, ...]:
    raw = reader.text("CORS_ORIGINS")
    if not raw:
        return ()
    if production:
        reader.problems.append(
            "CORS_ORIGINS is set but NODE_ENV=production: NSPS calls the service server to "
            "server, so CORS stays closed in production; unset CORS_ORIGINS"
        )
        return ()
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        if origin != "*" and not _is_http_url(origin):
            reader.problems.append(
                f"CORS_ORIGINS entry {origin!r} is not an origin such as http://localhost:8080"
            )
    return origins


def _is_header_token(value: str) -> bool:
    """Return whether every character is printable ASCII other than a space (0x21 to 0x7E)."""
    return all("!" <= character <= "~" for character in value)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class _Reader:
    """Read typed variables and collect one problem line per invalid value."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def text(self, name: str) -> str:
        return self.variables.get(name, "").strip()

    def choice(
        self, name: str, allowed: tuple[str, ...], *, default: str, alias: str | None = None
    ) -> str:
        source = name
        value = self.text(name).lower()
        if not value and alias:
            source = alias
            value = self.text(alias).lower()
        if not value:
            return default
        if value not in allowed:
            self.problems.append(f"{source}={value!r} is invalid: use one of {', '.join(allowed)}")
            return default
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.text(name).lower()
        if not value:
            return default
        if value in _TRUE_WORDS:
            return True
        if value in _FALSE_WORDS:
            return False
        self.problems.append(f"{name}={value!r} is not a boolean: use true or false")
        return default

    def integer(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        return self._parse(name, int, default, minimum, maximum, "an integer")

    def number(self, name: str, *, default: float, minimum: float, maximum: float) -> float:
        return self._parse(name, float, default, minimum, maximum, "a number")

    def _parse(
        self,
        name: str,
        convert: Callable[[str], T],
        default: T,
        minimum: T,
        maximum: T,
        kind: str,
    ) -> T:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = convert(raw)
        except ValueError:
            value = None
        if value is None or not (minimum <= value <= maximum):  # type: ignore[operator]
            self.problems.append(f"{name}={raw!r} is not {kind} from {minimum} to {maximum}")
            return default
        return value

    def path(self, name: str, *, default: Path) -> Path:
        return self.optional_path(name) or default

    def optional_path(self, name: str) -> Path | None:
        raw = self.text(name)
        return Path(raw).expanduser() if raw else None

    def url(self, name: str, *, example: str) -> str:
        """Read a URL of scheme, host and optional port; return it in lower case without a "/".

        An invalid URL adds one problem and returns "". The problem line never repeats user info
        or a query, because either may carry a secret.
        """
        raw = self.text(name)
        if not raw:
            return ""
        parts = urlsplit(raw)
        if not _is_http_url(raw):
            quoted_value = "" if any(mark in raw for mark in "@?#") else f"={raw!r}"
            self.problems.append(f"{name}{quoted_value} is not an http or https URL")
            return ""

        extras = [
            label
            for label, present in (
                ("user info", "@" in parts.netloc),
                ("path", parts.path not in ("", "/")),
                ("query", bool(parts.query) or raw.endswith("?")),
                ("fragment", bool(parts.fragment) or raw.endswith("#")),
            )
            if present
        ]
        if extras:
            listed = " and ".join(filter(None, (", ".join(extras[:-1]), extras[-1])))
            self.problems.append(
                f"{name} is not a scheme and host only, such as {example}: remove its {listed}"
            )
            return ""
        try:
            _ = parts.port
        except ValueError:
            self.problems.append(
                f"{name}={raw!r} has an invalid port: use a port from 1 to 65535 or none"
            )
            return ""
        hostname = parts.hostname or ""
        if not (_is_ip_address(hostname) or _is_host_name(hostname)):
            self.problems.append(
                f"{name}={raw!r} has an invalid host name: use a URL such as {example}"
            )
            return ""
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
