"""Measure the Zoho client's per-call cost and throughput against the local emulator.

Prints, per operation, the median and 95th-percentile time of one call made from one thread,
then the calls per second that several threads reach through one client at a given
`max_concurrency`. Everything runs over real HTTP on 127.0.0.1, so the figures are the client's
and the emulator's own overhead, not Zoho's latency, which adds roughly 100-500 ms per call
(an estimate, not measured here).

    .venv/bin/python bench/zoho_client.py --calls 300 --threads 10 --concurrency 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable

from engine.emulator import EmulatorServer
from engine.zoho import ZohoClient, ZohoSettings


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def time_calls(call: Callable[[int], object], count: int) -> list[float]:
    durations = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        durations.append(time.perf_counter() - started)
    return durations


def throughput(call: Callable[[int], object], count: int, threads: int) -> float:
    counter = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            call(index)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per measurement")
    parser.add_argument("--threads", type=int, default=10, help="threads for the throughput run")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=5,
        help="the client's max_concurrency for the throughput run",
    )
    args = parser.parse_args()

    with EmulatorServer() as emulator:
        settings = ZohoSettings(
            accounts_url=emulator.url,
            api_domain=emulator.url,
            client_id="sandbox-client",
            client_secret="sandbox-secret",
            refresh_token="sandbox-refresh-token",
            max_concurrency=args.concurrency,
        )
        with ZohoClient(settings) as client:
            operations: dict[str, Callable[[int], object]] = {
                "upsert": lambda index: client.upsert(
                    "Contacts", [{"I_PB": f"bench-{index}", "Last_Name": "Bench"}], ["I_PB"]
                ),
                "get": lambda index: client.get("Contacts", "5725767000000411001"),
                "search": lambda index: client.search_exact("Contacts", "I_PB", f"bench-{index}"),
            }
            client.get("Contacts", "5725767000000411001")

            print(f"{args.calls} calls each, one thread")
            print(f"{'operation':<10} {'median ms':>10} {'p95 ms':>10}")
            for name, call in operations.items():
                durations = time_calls(call, args.calls)
                print(
                    f"{name:<10} {statistics.median(durations) * 1000:>10.2f} "
                    f"{percentile(durations, 0.95) * 1000:>10.2f}"
                )

            print(
                f"\n{args.calls} calls, {args.threads} threads, max_concurrency={args.concurrency}"
            )
            print(f"{'operation':<10} {'calls/s':>10}")
            for name, call in operations.items():
                rate = throughput(call, args.calls, args.threads)
                print(f"{name:<10} {rate:>10.0f}")

            tokens = len(emulator.request_log("token"))
            print(f"\ntoken requests during the run: {tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
