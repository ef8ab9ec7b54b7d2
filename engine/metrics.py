"""Prometheus metrics of the connector, served at `/metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "connector_events",
    "Events handled, by event type and outcome (processed, duplicate, stale, ignored, failed).",
    ["event_type", "outcome"],
    registry=REGISTRY,
)

EVENT_SECONDS = Histogram(
    "connector_event_duration_seconds",
    "Time from receiving an event to answering it, in seconds.",
    ["event_type"],
    registry=REGISTRY,
)

ZOHO_CALLS = Counter(
    "connector_zoho_calls",
    "Zoho CRM HTTP calls, by operation (search, get, insert, update, upsert, token) and "
    "HTTP status, or the transport error name when no status arrived.",
    ["operation", "status"],
    registry=REGISTRY,
)

ZOHO_CALL_SECONDS = Histogram(
    "connector_zoho_call_duration_seconds",
    "Duration of Zoho CRM HTTP calls, in seconds.",
    ["operation"],
    registry=REGISTRY,
)

ZOHO_RETRIES = Counter(
    "connector_zoho_retries",
    "Zoho CRM calls retried after a transient failure, by operation.",
    ["operation"],
    registry=REGISTRY,
)
