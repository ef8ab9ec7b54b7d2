"""Build the running service from settings: planner, Zoho client, runner, journal, processor."""

from __future__ import annotations

import functools
import logging
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import falcon

from engine.config import Settings
from engine.service.app import create_app
from engine.zoho.settings import ZohoSettings

if TYPE_CHECKING:
    from engine.mapping.model import CompiledMappings

logger = logging.getLogger("engine.service")


class ServiceStartError(Exception):
    """Failure to open or write a file or directory that a setting names."""


class Service:
    """The Falcon app and the resources it holds, released by `close`."""

    app: falcon.App
    """Set by `build_service` once every resource the app needs is open."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []

    def add_closer(self, closer: Callable[[], None]) -> None:
        """Register a function that releases one resource; `close` calls it."""
        self._closers.append(closer)

    def close(self) -> None:
        """Release the resources in reverse order of creation; safe to call twice."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:
                logger.exception("releasing a service resource failed")


def zoho_settings(settings: Settings) -> ZohoSettings:
    """Return the Zoho client settings that the service settings describe."""
    return ZohoSettings(
        accounts_url=settings.zoho_accounts_url,
        api_domain=settings.zoho_api_domain,
        client_id=settings.zoho_client_id,
        client_secret=settings.zoho_client_secret,
        refresh_token=settings.zoho_refresh_token,
        token_file=settings.zoho_token_file,
        timeout_seconds=settings.zoho_timeout_seconds,
        connect_timeout_seconds=settings.zoho_connect_timeout_seconds,
        max_concurrency=settings.zoho_max_concurrency,
        # None leaves `trigger` out, so Zoho runs workflows as for a write made in its UI.
        trigger=None if settings.zoho_trigger_workflows else (),
    )


def build_service(settings: Settings) -> Service:
    """Construct every component and the app around them.

    Raises `engine.mapping.MappingInvalidError` when the mapping or schema files have findings,
    and `ServiceStartError` when `JOURNAL_PATH` or `LOCK_DIR` cannot be opened or written.
    Nothing is left open in either case.
    """
    from engine.delivery.processor import EventProcessor
    from engine.journal import SqliteJournal
    from engine.journal.sqlite import JournalSchemaError
    from engine.planning.planner import Planner
    from engine.runner import Runner
    from engine.zoho.client import ZohoClient

    max_future_skew = timedelta(seconds=settings.event_time_max_skew_seconds)
    planner = Planner.from_directory(
        mappings_dir=settings.mappings_dir,
        schemas_dir=settings.schemas_dir,
        max_future_skew=max_future_skew,
    )

    service = Service()
    client = ZohoClient(zoho_settings(settings))
    service.add_closer(client.close)
    try:
        try:
            journal = SqliteJournal(settings.journal_path)
        except JournalSchemaError as error:
            raise ServiceStartError(str(error)) from error
        except (OSError, sqlite3.Error) as error:
            raise _not_writable("JOURNAL_PATH", settings.journal_path, error) from error
        service.add_closer(journal.close)

        try:
            processor = EventProcessor(
                planner,
                Runner(client),
                journal,
                budget_seconds=settings.event_time_budget_seconds,
                lock_dir=settings.lock_dir,
                max_future_skew=max_future_skew,
            )
            _check_writable_directory(settings.lock_dir)
        except OSError as error:
            raise _not_writable("LOCK_DIR", settings.lock_dir, error) from error
        probe_module, probe_key_field = _readiness_probe(planner.mappings)
        readiness = functools.partial(client.check_ready, probe_module, probe_key_field)
        service.app = create_app(
            settings, processor=processor, readiness=readiness, event_types=planner.event_types
        )
    except BaseException:
        service.close()
        raise
    return service


def _readiness_probe(mappings: CompiledMappings) -> tuple[str | None, str | None]:
    """Return the module and key field that the readiness check searches.

    It is the first module that the first action plan writes, so the probe needs the same Zoho
    scopes as the events do. Without action plans it is the first declared module, and without
    modules it is `(None, None)`, so only the token is checked.
    """
    for action_plan in mappings.action_plans.values():
        for step in action_plan.steps:
            return step.module.module.name, step.module.key_field.name
    for strategy in mappings.modules.values():
        return strategy.module.name, strategy.key_field.name
    return None, None


def _check_writable_directory(directory: Path) -> None:
    """Create and delete a file in `directory`; raise `OSError` when that fails.

    A real write covers permissions, ACLs and read-only mounts alike, unlike `os.access`.
    """
    with tempfile.TemporaryFile(dir=directory):
        pass


def _not_writable(variable: str, path: Path, error: Exception) -> ServiceStartError:
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
        # The file exists but is not an SQLite database. It may contain other data, so the
        # message tells the operator to move it away instead of suggesting a permission fix.
        return ServiceStartError(
            f"{variable}={str(path)!r} cannot be opened: {error}; it is not a journal, so move "
            f"the file away or set {variable} to another path"
        )
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        # `mkdir` reports a regular file in the path as "File exists" or "Not a directory".
        reason = "a part of the path is a file, not a directory"
    elif isinstance(error, OSError) and error.strerror:
        reason = error.strerror
    else:
        reason = str(error)
    return ServiceStartError(
        f"{variable}={str(path)!r} cannot be opened: {reason}; set {variable} to a writable "
        "path on a local disk"
    )
