"""The Falcon application: routes, middleware and error handlers, with no outside resources.

`create_app` takes the event processor and the readiness check as arguments, so tests can serve
the real HTTP layer around any processor. `engine.service.wiring.build_service` passes the
real ones.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import falcon

from engine.config import Settings
from engine.service.errors import install_error_handlers
from engine.service.middleware import (
    BearerAuthMiddleware,
    OptionsMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from engine.service.resources import (
    EventProcessing,
    HealthResource,
    MetricsResource,
    ProcessEventResource,
    ReadinessCheck,
    ReadinessResource,
)

# The routes `create_app` adds, as a 404 error body lists them.
ENDPOINTS = ("POST /process-event", "GET /health", "GET /ready", "GET /metrics")


def create_app(
    settings: Settings,
    *,
    processor: EventProcessing,
    readiness: ReadinessCheck,
    event_types: Collection[str] = (),
) -> falcon.App:
    """Return the Falcon app around `processor` and `readiness`.

    `event_types` are the event types the mappings plan or ignore. They are the only values of
    the `event_type` label of a failed event in the metrics, and any other type is counted
    under "invalid".
    """
    # Falcon calls process_response in reverse order, so the request context middleware,
    # listed first, writes the access log line after every other middleware has run.
    middleware: list[Any] = [
        RequestContextMiddleware(),
        SecurityHeadersMiddleware(hsts=settings.production),
    ]
    if settings.cors_origins:
        middleware.append(
            falcon.CORSMiddleware(
                allow_origins="*" if "*" in settings.cors_origins else list(settings.cors_origins),
                expose_headers=["X-B3-TraceId", "X-Request-Id", "Retry-After"],
            )
        )
    middleware.append(OptionsMiddleware(settings.cors_origins))
    middleware.append(BearerAuthMiddleware(settings.api_token))

    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.add_route("/health", HealthResource(settings.app_name))
    app.add_route("/ready", ReadinessResource(readiness))
    app.add_route("/metrics", MetricsResource())
    app.add_route(
        "/process-event",
        ProcessEventResource(
            processor, max_body_bytes=settings.max_body_bytes, event_types=event_types
        ),
    )
    install_error_handlers(app, endpoints=ENDPOINTS)
    return app
