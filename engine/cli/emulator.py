"""`zoho-connector emulator`: run the local Zoho CRM emulator until interrupted."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8090,
        help="TCP port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="SQLite file that keeps records across restarts "
        "(default: records live in memory only)",
    )
    parser.add_argument(
        "--modules",
        type=Path,
        metavar="FILE",
        help="module and field definitions (default: mappings/crm-modules.yaml)",
    )
    parser.add_argument(
        "--search-lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay before search returns a write, like Zoho's search index (default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay added to every records API request (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency-limit",
        type=int,
        metavar="N",
        help="respond 429 TOO_MANY_REQUESTS above N requests in flight (default: no limit)",
    )
    parser.add_argument(
        "--token-expires-in",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="lifetime of issued access tokens (default: %(default)s)",
    )
    parser.add_argument(
        "--client-id",
        default="sandbox-client",
        help="OAuth client id the token endpoint accepts (default: %(default)s)",
    )
    parser.add_argument(
        "--client-secret",
        default="sandbox-secret",
        help="OAuth client secret the token endpoint accepts (default: %(default)s)",
    )
    parser.add_argument(
        "--refresh-token",
        default="sandbox-refresh-token",
        help="refresh token the token endpoint accepts (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from engine.emulator import EmulatorServer, EmulatorSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = EmulatorSettings(
        search_lag_seconds=args.search_lag,
        latency_seconds=args.latency,
        concurrency_limit=args.concurrency_limit,
        token_expires_in=args.token_expires_in,
    )
    try:
        server = EmulatorServer(
            modules_path=args.modules,
            state_file=args.state,
            host=args.host,
            port=args.port,
            client_id=args.client_id,
            client_secret=args.client_secret,
            refresh_token=args.refresh_token,
            settings=settings,
        )
    except (OSError, ValueError) as exc:
        print(f"zoho-connector emulator: cannot load the module definitions: {exc}")
        return 1

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server.start()
    except OSError as exc:
        print(f"zoho-connector emulator: cannot listen on {args.host}:{args.port}: {exc}")
        return 1

    print(f"Zoho CRM emulator listening on {server.url}", flush=True)
    print(f"  accounts URL and API domain: {server.url}", flush=True)
    print(
        f"  control API: {server.url}/__emulator/ (settings, faults, log, records, reset)",
        flush=True,
    )
    stop.wait()
    server.stop()
    return 0
