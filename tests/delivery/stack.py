"""A connector stack against the emulator over real HTTP, and NSPS events to send it."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.delivery.processor import EventProcessor
from engine.emulator.server import EmulatorServer
from engine.journal import SqliteJournal
from engine.planning.planner import Planner
from engine.runner import Runner
from engine.zoho.client import ZohoClient
from engine.zoho.settings import ZohoSettings

T0 = datetime(2025, 3, 12, 16, 47, 30, 443939, tzinfo=UTC)
ACCOUNT = "79123456789@msisdn"

WRITE_OPERATIONS = ("insert", "update", "upsert")

BASE_EVENT: dict[str, Any] = {
    "event_id": "3e84c79f-ab6f-4546-8e27-0b6ab866f1fb",
    "data": {
        "event_type": "SIM/Updated",
        "variables": {"i_env": 1, "i_event": 999999, "i_account": 1, "curr_status": "used"},
    },
    "pb_data": {
        "account_info": {
            "bill_status": "open",
            "billing_model": "credit_account",
            "blocked": False,
            "firstname": "Olena",
            "lastname": "Koval",
            "i_account": 1,
            "id": ACCOUNT,
            "phone1": "",
            "product_name": "Pay as you go",
        },
        "sim_info": {
            "i_sim_card": 3793,
            "imsi": "001010000020349",
            "msisdn": "79123456789",
            "status": "active",
        },
    },
    "handler_id": "wtl-hlr-hss-nsps",
    "created_at": "2025-03-12T16:47:30.443939+00:00",
    "updated_at": "2025-03-12T16:47:36.585885+00:00",
    "status": "received",
}


def eid(name: str) -> str:
    """Return the UUID event id that `make_event(name)` uses; NSPS event ids are UUIDs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"event:{name}"))


def make_event(
    name: str,
    event_type: str = "SIM/Updated",
    *,
    at: timedelta = timedelta(0),
    account: str = ACCOUNT,
    i_sim_card: int = 3793,
    prev_i_sim_card: int | None = None,
    product_name: str = "Pay as you go",
    sim_status: str = "active",
) -> dict[str, Any]:
    """Return an NSPS event like the real ones, created `at` after the base time.

    Its event id is `eid(name)`.
    """
    event = copy.deepcopy(BASE_EVENT)
    event["event_id"] = eid(name)
    event["data"]["event_type"] = event_type
    event["created_at"] = (T0 + at).isoformat()
    account_info = event["pb_data"]["account_info"]
    account_info["id"] = account
    account_info["product_name"] = product_name
    sim_info = event["pb_data"]["sim_info"]
    sim_info["i_sim_card"] = i_sim_card
    sim_info["status"] = sim_status
    sim_info["imsi"] = f"00101{i_sim_card:010d}"
    if prev_i_sim_card is not None:
        event["pb_data"]["prev_sim_info"] = {
            "i_sim_card": prev_i_sim_card,
            "imsi": f"00101{prev_i_sim_card:010d}",
            "status": "active",
        }
    return event


@dataclass
class Stack:
    """One connector wired against one emulator, as the service wires it."""

    emulator: EmulatorServer
    client: ZohoClient
    journal: SqliteJournal
    processor: EventProcessor

    def writes(self) -> list[dict[str, Any]]:
        return [
            entry for entry in self.emulator.request_log() if entry["operation"] in WRITE_OPERATIONS
        ]

    def records(self, module: str) -> list[dict[str, Any]]:
        return self.emulator.records(module)


def zoho_settings(emulator: EmulatorServer, token_file: Path) -> ZohoSettings:
    return ZohoSettings(
        accounts_url=emulator.url,
        api_domain=emulator.url,
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        refresh_token="sandbox-refresh-token",
        token_file=token_file,
        max_concurrency=8,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )


def build_stack(
    emulator: EmulatorServer,
    directory: Path,
    *,
    budget_seconds: float = 20.0,
    mappings_dir: Path | None = None,
) -> Stack:
    client = ZohoClient(zoho_settings(emulator, directory / "token.json"))
    journal = SqliteJournal(directory / "journal.sqlite3")
    processor = EventProcessor(
        Planner.from_directory(mappings_dir=mappings_dir),
        Runner(client),
        journal,
        budget_seconds=budget_seconds,
        lock_dir=directory / "locks",
    )
    return Stack(emulator, client, journal, processor)


def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return records without the values that differ between runs (ids, times, owners)."""
    volatile = {"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By", "Owner"}
    cleaned = []
    for record in records:
        kept = {key: value for key, value in record.items() if key not in volatile}
        if isinstance(kept.get("Related_Contact"), dict):
            kept["Related_Contact"] = "linked"
        cleaned.append(kept)
    return sorted(cleaned, key=repr)
