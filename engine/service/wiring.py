"""Build the running service from settings: planner, Zoho client, runner, journal, processor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import falcon

from engine.config import Settings
from engine.service.app import create_app
from engine.zoho.settings import ZohoSettings

logger = logging.getLogger("engine.service")


@dataclass
class Service:
    """The Falcon app and the resources it holds, released by `close`."""

    app: falcon.App
    _closers: list[Callable[[], None]] = field(default_factory=list)

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

    Raises `engine.mapping.MappingInvalidError` when the mapping or schema files have findings;
    nothing is left open in that case.
    """
    from engine.delivery.processor import EventProcessor
    from engine.journal import SqliteJournal
    from engine.planning.planner import Planner
    from engine.runner import Runner
    from engine.zoho.client import ZohoClient

    planner = Planner.from_directory(
        mappings_dir=settings.mappings_dir, schemas_dir=settings.schemas_dir
    )

    service = Service(app=falcon.App())
    client = ZohoClient(zoho_settings(settings))
    service._closers.append(client.close)
    try:
        journal = SqliteJournal(settings.journal_path)
        service._closers.append(journal.close)
        processor = EventProcessor(
            planner,
            Runner(client),
            journal,
            budget_seconds=settings.event_time_budget_seconds,
            lock_dir=settings.lock_dir,
        )
        service.app = create_app(settings, processor=processor, readiness=client.check_ready)
    except BaseException:
        service.close()
        raise
    return service
