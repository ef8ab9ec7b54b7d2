"""Measure how long `EmulatorServer.stop()` takes in the states the test fixtures leave it in.

Prints, per scenario, the median and maximum time of `stop()` over several runs, and how the
requests in flight at the time of the stop ended (HTTP status or exception name). Everything
runs over real HTTP on 127.0.0.1.

    .venv/bin/python bench/emulator_stop.py --repeat 5
"""

from __future__ import annotations

import argparse
import collections
import statistics
import threading
import time
from collections.abc import Callable

import requests

from engine.emulator import EmulatorServer

RECORD_URL = "/crm/v8/Contacts/5725767000000411001"


def idle(emulator: EmulatorServer) -> list[threading.Thread]:
    return []


def keep_alive(emulator: EmulatorServer) -> list[threading.Thread]:
    # The session is left open, so its pooled connection stays open on the server.
    session = requests.Session()
    session.get(emulator.url + RECORD_URL, timeout=10)
    return []


def in_flight(
    count: int, threads_started: int, **setup: object
) -> Callable[[EmulatorServer, list[int | str]], list[threading.Thread]]:
    """Return a scenario that leaves `count` requests held by latency or a timeout fault."""

    def scenario(emulator: EmulatorServer, outcomes: list[int | str]) -> list[threading.Thread]:
        token = emulator.issue_access_token()
        if setup.get("fault"):
            emulator.add_fault(operation="get", kind="timeout", hold_seconds=60.0, count=count)
        else:
            emulator.update_settings(latency_seconds=60.0)

        def call() -> None:
            try:
                response = requests.get(
                    emulator.url + RECORD_URL,
                    timeout=90,
                    headers={"Authorization": f"Zoho-oauthtoken {token}"},
                )
                outcomes.append(response.status_code)
            except requests.RequestException as exc:
                outcomes.append(type(exc).__name__)

        callers = [threading.Thread(target=call) for _ in range(count)]
        for caller in callers:
            caller.start()
        # Wait until every request is received: started by a worker, or queued for one.
        queued = max(0, count - threads_started)
        while (
            len(emulator.request_log("get")) < min(count, threads_started)
            or len(emulator._server.task_dispatcher.queue) < queued
        ):
            time.sleep(0.01)
        return callers

    return scenario


def measure(
    name: str, scenario: Callable[..., list[threading.Thread]], repeat: int, threads: int
) -> None:
    durations: list[float] = []
    outcomes: list[int | str] = []
    for _ in range(repeat):
        emulator = EmulatorServer(threads=threads).start()
        if scenario in (idle, keep_alive):
            callers = scenario(emulator)
        else:
            callers = scenario(emulator, outcomes)
        started = time.perf_counter()
        emulator.stop()
        durations.append(time.perf_counter() - started)
        for caller in callers:
            caller.join()
    ended = dict(collections.Counter(outcomes)) or "-"
    print(
        f"{name:<40} median {statistics.median(durations) * 1000:7.1f} ms   "
        f"max {max(durations) * 1000:7.1f} ms   requests ended: {ended}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per scenario")
    args = parser.parse_args()

    measure("idle", idle, args.repeat, threads=32)
    measure("one keep-alive connection", keep_alive, args.repeat, threads=32)
    measure("3 requests in 60 s latency", in_flight(3, 32), args.repeat, threads=32)
    measure(
        "3 requests held by a timeout fault", in_flight(3, 32, fault=True), args.repeat, threads=32
    )
    measure("40 requests in latency, 32 threads", in_flight(40, 32), args.repeat, threads=32)


if __name__ == "__main__":
    main()
