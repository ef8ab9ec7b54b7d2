"""Measure what the delivery guarantees cost: Zoho calls per event and journal time per event.

Runs the same events twice against the local Zoho CRM emulator over real HTTP:

- bare: the real planner and runner, nothing else (no journal, no locks, no ordering);
- guaranteed: the real `EventProcessor` with a `SqliteJournal` and record locks.

Zoho calls are counted from the emulator's request log (token requests excluded), so the
numbers are what Zoho would see. Journal time is the time spent inside journal methods.

    .venv/bin/python bench/delivery_overhead.py --events 300
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
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

EVENT_TYPES = ("SIM/Created", "SIM/Updated", "SIM/Updated", "SIM/Deleted")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(count: int, accounts: int) -> list[dict[str, Any]]:
    """Return `count` distinct events spread over `accounts` accounts, two SIM cards each."""
    events = []
    for number in range(count):
        account = number % accounts
        sim = 10_000 + account * 2 + (number // accounts) % 2
        event_type = EVENT_TYPES[(number // accounts) % len(EVENT_TYPES)]
        events.append(
            {
                "event_id": f"00000000-0000-4000-8000-{number:012d}",
                "data": {"event_type": event_type, "variables": {"i_account": account}},
                "pb_data": {
                    "account_info": {
                        "id": f"7912{account:07d}@msisdn",
                        "i_account": account,
                        "firstname": "Bench",
                        "lastname": f"Account {account}",
                        "bill_status": "open",
                        "product_name": f"Plan {number % 3}",
                    },
                    "sim_info": {"i_sim_card": sim, "imsi": f"00101{sim:010d}", "status": "active"},
                },
                "created_at": (T0 + timedelta(seconds=number)).isoformat(),
            }
        )
    return events


class TimedJournal(SqliteJournal):
    """SqliteJournal that adds the time spent in each public method to `seconds`."""

    seconds = 0.0

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name.startswith("_") or not callable(attribute) or name == "close":
            return attribute

        @functools.wraps(attribute)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                TimedJournal.seconds += time.perf_counter() - started

        return timed


def zoho_calls(emulator: EmulatorServer) -> int:
    return sum(1 for entry in emulator.request_log() if entry["operation"] != "token")


def client_for(emulator: EmulatorServer, directory: Path) -> ZohoClient:
    return ZohoClient(
        ZohoSettings(
            accounts_url=emulator.url,
            api_domain=emulator.url,
            client_id="sandbox-client",
            client_secret="sandbox-secret",
            refresh_token="sandbox-refresh-token",
            token_file=directory / "token.json",
        )
    )


def run_bare(events: list[dict[str, Any]], directory: Path) -> dict[str, float]:
    planner = Planner.from_directory()
    with EmulatorServer() as emulator:
        client = client_for(emulator, directory)
        runner = Runner(client)
        seconds = _timed(lambda: [runner.run(planner.plan(event)) for event in events])
        calls = zoho_calls(emulator)
        client.close()
    return {"calls": calls, "seconds": seconds}


def run_guaranteed(
    events: list[dict[str, Any]], directory: Path, synchronous: str
) -> dict[str, float]:
    planner = Planner.from_directory()
    TimedJournal.seconds = 0.0
    with EmulatorServer() as emulator:
        client = client_for(emulator, directory)
        journal = TimedJournal(directory / "journal.sqlite3", synchronous=synchronous)
        processor = EventProcessor(planner, Runner(client), journal, lock_dir=directory / "locks")
        seconds = _timed(lambda: [processor.process(event) for event in events])
        calls = zoho_calls(emulator)
        journal_seconds = TimedJournal.seconds

        emulator.clear_log()
        duplicate_seconds = _timed(lambda: [processor.process(event) for event in events])
        duplicate_calls = zoho_calls(emulator)
        journal.close()
        client.close()
    return {
        "calls": calls,
        "seconds": seconds,
        "journal_seconds": journal_seconds,
        "duplicate_calls": duplicate_calls,
        "duplicate_seconds": duplicate_seconds,
    }


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="events per run (default 300)")
    parser.add_argument("--accounts", type=int, default=50, help="accounts (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="SQLite synchronous setting of the journal (default FULL)",
    )
    args = parser.parse_args()
    events = make_events(args.events, args.accounts)

    bare, guaranteed = [], []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as directory:
            bare.append(run_bare(events, Path(directory)))
        with tempfile.TemporaryDirectory() as directory:
            guaranteed.append(run_guaranteed(events, Path(directory), args.synchronous))
        print(f"run {run + 1}/{args.repeat} done", flush=True)

    count = len(events)
    bare_calls = bare[0]["calls"] / count
    guaranteed_calls = guaranteed[0]["calls"] / count

    print()
    print(
        f"machine: {platform.platform()}, Python {platform.python_version()}, {_cpu_count()} CPUs"
    )
    print(
        f"events: {count} over {args.accounts} accounts ({', '.join(sorted(set(EVENT_TYPES)))}),"
        f" journal synchronous={args.synchronous}, {args.repeat} runs, median shown"
    )
    print(f"Zoho calls per event, bare runner:            {bare_calls:.3f}")
    print(f"Zoho calls per event, with guarantees:        {guaranteed_calls:.3f}")
    print(f"extra Zoho calls per event for guarantees:    {guaranteed_calls - bare_calls:+.3f}")
    print(
        f"Zoho calls per duplicate delivery:            "
        f"{guaranteed[0]['duplicate_calls'] / count:.3f}"
    )
    print(f"time per event, bare runner:                  {_median_ms(bare, 'seconds', count)}")
    print(
        f"time per event, with guarantees:              {_median_ms(guaranteed, 'seconds', count)}"
    )
    print(
        f"journal time per event (inside journal):      "
        f"{_median_ms(guaranteed, 'journal_seconds', count)}"
    )
    print(
        f"time per duplicate delivery:                  "
        f"{_median_ms(guaranteed, 'duplicate_seconds', count)}"
    )


def _median_ms(runs: list[dict[str, float]], key: str, count: int) -> str:
    return f"{statistics.median(run[key] for run in runs) / count * 1000:.2f} ms"


def _cpu_count() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
