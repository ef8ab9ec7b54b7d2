"""`zoho-connector serve`: serve the NSPS webhook on waitress until SIGTERM or SIGINT.

Exit status:
- 0 after a graceful shutdown;
- 1 when the mapping or schema files are invalid;
- 2 when the configuration is invalid, or a file it names (`LOG_DIR`, `JOURNAL_PATH`,
  `LOCK_DIR`) cannot be written;
- 3 when the address to listen on is taken or invalid.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.config import LOOPBACK_HOST, host_problem

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.emulator import EmulatorServer
    from engine.mapping.findings import MappingInvalidError

EXIT_OK = 0
EXIT_INVALID_MAPPINGS = 1
EXIT_INVALID_CONFIG = 2
EXIT_LISTEN_FAILED = 3

# The sample event the sandbox banner posts; it ships in the repository, next to `engine/`.
SAMPLE_EVENT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sim-created.json"

logger = logging.getLogger("engine.cli.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="run against the bundled Zoho CRM emulator, as SANDBOX=true does; the Zoho "
        "credentials are not needed, and API_TOKEN is generated when it is not set. Without "
        "this option, sandbox mode starts when no Zoho credential is set and NODE_ENV is not "
        "production, and then listens on 127.0.0.1 only",
    )
    parser.add_argument(
        "--host",
        help="address to listen on (default: HOST, else 0.0.0.0, or 127.0.0.1 in sandbox "
        "mode); ignored when sandbox mode starts because no Zoho credential is set",
    )
    parser.add_argument(
        "--port",
        type=_port,
        help="TCP port to listen on, 0 to 65535; 0 picks a free port (default: PORT, else 3000)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        help="file of environment variables; variables already set in the environment win "
        "(default: .env)",
    )


def _port(text: str) -> int:
    """Parse `--port`; glibc getaddrinfo would otherwise wrap 70000 around to port 4464."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return port


def run(args: argparse.Namespace) -> int:
    from engine.config import ConfigError, Settings
    from engine.mapping.findings import MappingInvalidError
    from engine.service.logs import configure_logging
    from engine.service.server import ServiceServer
    from engine.service.wiring import ServiceStartError, build_service

    try:
        settings = Settings.from_env(
            env_file=args.env_file, sandbox=args.sandbox, auto_sandbox=True
        )
    except ConfigError as error:
        print(f"zoho-connector: {error}", file=sys.stderr)
        return EXIT_INVALID_CONFIG
    host_option_problem = host_problem("--host", args.host) if args.host else None
    if host_option_problem is not None:
        print(f"zoho-connector: {host_option_problem}", file=sys.stderr)
        return EXIT_INVALID_CONFIG
    host = args.host or settings.host
    if settings.sandbox_automatic:
        host = settings.host
    settings = dataclasses.replace(
        settings, host=host, port=settings.port if args.port is None else args.port
    )

    try:
        configure_logging(
            level=settings.log_level, log_dir=settings.log_dir, json_console=settings.production
        )
    except OSError as error:
        print(
            f"zoho-connector: cannot write logs to LOG_DIR={str(settings.log_dir)!r}: "
            f"{error.strerror}; set LOG_DIR to a writable directory",
            file=sys.stderr,
        )
        return EXIT_INVALID_CONFIG
    for warning in settings.warnings:
        logger.warning("configuration: %s", warning)
    if settings.sandbox_automatic:
        _warn_automatic_sandbox(args.host)

    emulator = None
    sandbox_dir = None
    if settings.sandbox:
        sandbox_dir = Path(tempfile.mkdtemp(prefix="zoho-connector-sandbox-"))
        try:
            emulator, settings = _start_emulator(settings, sandbox_dir)
        except (OSError, ValueError) as error:
            shutil.rmtree(sandbox_dir, ignore_errors=True)
            print(
                f"zoho-connector: not serving, the emulator cannot start: {error}", file=sys.stderr
            )
            return EXIT_INVALID_MAPPINGS

    try:
        try:
            service = build_service(settings)
        except MappingInvalidError as error:
            return _report_invalid_mappings(error)
        except ServiceStartError as error:
            print(f"zoho-connector: not serving: {error}", file=sys.stderr)
            return EXIT_INVALID_CONFIG

        try:
            try:
                server = ServiceServer(
                    service.app,
                    host=settings.host,
                    port=settings.port,
                    threads=settings.server_threads,
                    max_request_body_size=settings.max_body_bytes * 4,
                    drain_timeout=settings.shutdown_timeout_seconds,
                )
            except OSError as error:
                logger.error(
                    "cannot listen on %s:%s: %s; set HOST and PORT to a free address",
                    settings.host,
                    settings.port,
                    error.strerror or error,
                )
                return EXIT_LISTEN_FAILED
            except ValueError:
                # waitress raises ValueError when getaddrinfo fails: a host name that does not
                # resolve, or an address this host cannot use.
                logger.error(
                    "cannot listen on %s:%s: the address does not resolve to one this host can "
                    "listen on; set HOST to an IP address of this host, 0.0.0.0 or a name that "
                    "resolves",
                    settings.host,
                    settings.port,
                )
                return EXIT_LISTEN_FAILED
            server.install_signal_handlers()
            logger.info(
                "service started",
                extra={
                    "url": server.url,
                    "environment": settings.environment,
                    "sandbox": settings.sandbox,
                    "zoho_api_domain": settings.zoho_api_domain,
                },
            )
            if emulator is not None:
                print_sandbox_help(settings, server.url, emulator.url, sys.stdout)
            server.serve_forever()
        finally:
            service.close()
    finally:
        if emulator is not None:
            emulator.stop()
        if sandbox_dir is not None:
            shutil.rmtree(sandbox_dir, ignore_errors=True)
    logger.info("service stopped")
    return EXIT_OK


def _warn_automatic_sandbox(requested_host: str | None) -> None:
    """Log that sandbox mode started because no Zoho credential is set, and what that means."""
    logger.warning(
        "no Zoho credentials are configured, so sandbox mode started: events go to an "
        "in-memory Zoho CRM emulator and are lost at exit. Set ZOHO_CRM_CLIENT_ID, "
        "ZOHO_CRM_CLIENT_SECRET and ZOHO_CRM_REFRESH_TOKEN to write to Zoho CRM."
    )
    if requested_host and requested_host != LOOPBACK_HOST:
        logger.warning(
            "--host %s is overridden with %s: sandbox mode without Zoho credentials listens "
            "on the loopback address only; add --sandbox to listen on another address",
            requested_host,
            LOOPBACK_HOST,
        )


def _report_invalid_mappings(error: MappingInvalidError) -> int:
    for finding in error.findings:
        print(finding.as_text(), file=sys.stderr)
    print(
        f"zoho-connector: not serving, the mapping files have {len(error.findings)} finding(s)",
        file=sys.stderr,
    )
    return EXIT_INVALID_MAPPINGS


def _start_emulator(settings: Settings, state_dir: Path) -> tuple[EmulatorServer, Settings]:
    """Start the emulator and return it with settings that point the Zoho client at it.

    The emulator builds its modules from the `crm-modules.yaml` of `MAPPINGS_DIR` when that is
    set, so it has the fields the mappings write. Raises `OSError` or `ValueError` when that
    file cannot be read or is invalid. The emulator keeps records in memory, so the journal,
    the record locks and the token cache of this run go to `state_dir`. A journal kept from an
    earlier run would report the sample event as a duplicate and point at record ids the new
    emulator does not have.
    """
    from engine.emulator import EmulatorServer
    from engine.mapping.modules import MODULES_FILE_NAME

    modules_path = None
    if settings.mappings_dir is not None:
        modules_path = settings.mappings_dir / MODULES_FILE_NAME
    emulator = EmulatorServer(modules_path=modules_path)
    emulator.start()
    sandboxed = dataclasses.replace(
        settings,
        zoho_accounts_url=emulator.url,
        zoho_api_domain=emulator.url,
        zoho_client_id=emulator.state.client_id,
        zoho_client_secret=emulator.state.client_secret,
        zoho_refresh_token=emulator.state.refresh_token,
        zoho_token_file=state_dir / "zoho-token.json",
        journal_path=state_dir / "journal.sqlite3",
        lock_dir=state_dir / "locks",
    )
    logger.info("sandbox state is temporary", extra={"directory": str(state_dir)})
    return emulator, sandboxed


def print_sandbox_help(
    settings: Settings, service_url: str, emulator_url: str, out: TextIO
) -> None:
    """Print how to send the sample event and look at the records it creates.

    The API token is printed only when it was generated for this run. A token the operator
    set is a secret that must not reach the console or container logs, so the `curl` line
    reads it from the shell variable `API_TOKEN` instead.
    """
    local_url = service_url.replace("://0.0.0.0:", "://127.0.0.1:")
    if settings.api_token_generated:
        token_line = f"API token (generated for this run): {settings.api_token}"
        authorization = shlex.quote(f"Authorization: Bearer {settings.api_token}")
        send_line = "Send the sample SIM/Created event:"
    else:
        token_line = "API token: the API_TOKEN you set (not printed)"  # noqa: S105 - no token
        authorization = '"Authorization: Bearer $API_TOKEN"'
        send_line = "Send the sample SIM/Created event, with API_TOKEN exported in your shell:"
    sample_event = _shown_path(SAMPLE_EVENT)
    if not SAMPLE_EVENT.is_file():
        # Only an editable install reads the repository's docs; a wheel ships `engine/` alone.
        sample_event = Path("docs/examples/sim-created.json")
        send_line += "\n  (this install has no docs/examples/: run it in a repository checkout)"
    curl = " ".join(
        [
            "curl -sS -X POST",
            shlex.quote(f"{local_url}/process-event"),
            "-H",
            authorization,
            "-H 'Content-Type: application/json'",
            "--data",
            shlex.quote(f"@{sample_event}"),
        ]
    )
    lines = [""]
    if settings.sandbox_automatic:
        lines.append(
            "WARNING: no Zoho credentials are configured, so events go to an in-memory "
            "emulator and are lost at exit."
        )
    lines += [
        "Sandbox mode: Zoho CRM calls go to the bundled emulator, which keeps records in memory.",
        f"  connector: {local_url}",
        f"  emulator:  {emulator_url}",
        f"  {token_line}",
        "",
        send_line,
        f"  {curl}",
        "",
        "Look at the records it created in the emulated CRM:",
        f"  curl -sS {emulator_url}/__emulator/records/Contacts",
        f"  curl -sS {emulator_url}/__emulator/records/SIM_Cards",
        "",
        "Stop with Ctrl+C; in-flight events finish first.",
        "",
    ]
    out.write("\n".join(lines))
    out.flush()


def _shown_path(path: Path) -> Path:
    """Return `path` relative to the working directory when it is inside it, else absolute."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
