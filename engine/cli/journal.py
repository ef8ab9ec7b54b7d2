"""`zoho-connector events` and `zoho-connector replay`: read the journal and re-run events.

Both read the configuration as `serve` does, from the environment and the `--env-file` file,
and use the journal at `--journal`, else `JOURNAL_PATH`, else `var/journal.sqlite3`. `events`
needs neither `API_TOKEN` nor the Zoho credentials. `replay` needs the service configuration
(`ZOHO_CRM_*`, `MAPPINGS_DIR`, ...) because it runs events through the same processor as the
service.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine.config import DEFAULT_JOURNAL_PATH, ConfigError, Settings

if TYPE_CHECKING:
    from engine.delivery.processor import EventProcessor
    from engine.journal import JournalEntry

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_LIMIT = 50

_DURATION = re.compile(r"^(\d+)([smhd])$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def add_events_arguments(parser: argparse.ArgumentParser) -> None:
    _add_journal_argument(parser)
    parser.add_argument(
        "--failed",
        action="store_true",
        help="list only events that failed or never finished (received, in_progress)",
    )
    parser.add_argument(
        "--since",
        type=_since,
        metavar="T",
        help="list events first received at or after T: an ISO 8601 date or time (UTC when it "
        "has no offset), or an age such as 30m, 12h, 7d",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"list at most N events, newest first (default {DEFAULT_LIMIT})",
    )
    _add_format_argument(parser)


def run_events(args: argparse.Namespace) -> int:
    from engine.journal import SqliteJournal

    try:
        journal_path = _journal_path(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    problem = _journal_file_problem(journal_path)
    if problem is not None:
        return _journal_unusable(problem)

    try:
        # Read-only, so a user who may only read the journal can list it, and a running
        # service holding a write transaction does not delay the listing.
        journal = SqliteJournal(journal_path, read_only=True)
        try:
            entries = journal.list_events(
                unfinished_only=args.failed, since=args.since, limit=args.limit
            )
        finally:
            journal.close()
    except _journal_errors() as error:
        return _journal_unusable(_journal_error_text(journal_path, error))

    return _write_output(lambda out: _print_events(entries, args.format, out))


def _print_events(entries: Sequence[JournalEntry], output_format: str, out: TextIO) -> None:
    if output_format == "json":
        json.dump([_entry_json(entry) for entry in entries], out, indent=2)
        out.write("\n")
    else:
        _print_table(entries, out)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    _add_journal_argument(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("event_id", nargs="?", metavar="EVENT_ID", help="the event to run again")
    target.add_argument(
        "--failed",
        action="store_true",
        help="run again every event that failed or never finished, oldest first",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="with --failed, replay at most N events (default: all)",
    )
    _add_format_argument(parser)


def run_replay(args: argparse.Namespace) -> int:
    from engine.mapping import MappingInvalidError

    try:
        journal_path = _journal_path(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    problem = _journal_file_problem(journal_path)
    if problem is not None:
        return _journal_unusable(problem)
    try:
        settings = Settings.from_env(env_file=args.env_file)
        processor, close = _build_processor(settings, journal_path)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except MappingInvalidError as error:
        print(f"error: the mapping files are invalid:\n{error}", file=sys.stderr)
        return EXIT_USAGE
    except _journal_errors() as error:
        return _journal_unusable(_journal_error_text(journal_path, error))

    try:
        event_ids = _replay_targets(args, processor.journal)
        outcomes = _replay_all(processor, event_ids)
    except _journal_errors() as error:
        return _journal_unusable(_journal_error_text(journal_path, error))
    finally:
        close()

    status = _write_output(lambda out: _print_replay(outcomes, args.format, out))
    failed = [outcome for outcome in outcomes if outcome["outcome"] == "failed"]
    return EXIT_FAILED if failed else status


def _print_replay(outcomes: Sequence[dict[str, Any]], output_format: str, out: TextIO) -> None:
    if output_format == "json":
        json.dump(outcomes, out, indent=2)
        out.write("\n")
    else:
        for outcome in outcomes:
            print(_replay_line(outcome), file=out)


def _replay_targets(args: argparse.Namespace, journal: Any) -> list[str]:
    if not args.failed:
        return [args.event_id]
    # Oldest first, so that the ordering check meets the events in the order they happened
    # and `--limit N` replays the N oldest.
    entries = journal.list_events(unfinished_only=True, limit=args.limit, oldest_first=True)
    return [entry.event_id for entry in entries]


def _replay_all(processor: EventProcessor, event_ids: Sequence[str]) -> list[dict[str, Any]]:
    from engine.errors import ConnectorError

    outcomes: list[dict[str, Any]] = []
    for position, event_id in enumerate(event_ids):
        try:
            result = processor.replay(event_id)
        except ConnectorError as error:
            outcomes.append(
                {
                    "event_id": event_id,
                    "outcome": "failed",
                    "error": error.code,
                    "message": error.message,
                    "retry_after": error.retry_after,
                }
            )
            if error.status in (429, 503):
                # Zoho is rate limiting or down: the remaining events would fail the same way.
                for skipped in event_ids[position + 1 :]:
                    outcomes.append(
                        {
                            "event_id": skipped,
                            "outcome": "failed",
                            "error": "not_replayed",
                            "message": "not replayed because Zoho CRM is unavailable; retry later",
                            "retry_after": error.retry_after,
                        }
                    )
                break
            continue
        outcomes.append(
            {
                "event_id": event_id,
                "outcome": result.outcome,
                "message": result.body["message"],
                "zoho_calls": result.zoho_calls,
                "steps": result.body["steps"],
            }
        )
    return outcomes


def _build_processor(settings: Settings, journal_path: Path) -> tuple[EventProcessor, Any]:
    """Build the processor exactly as the service does, with the journal at `journal_path`."""
    from engine.delivery.processor import EventProcessor
    from engine.journal import SqliteJournal
    from engine.planning.planner import Planner
    from engine.runner import Runner
    from engine.service.wiring import zoho_settings
    from engine.zoho.client import ZohoClient

    if settings.sandbox:
        raise ConfigError(
            [
                "SANDBOX is true, but replay sends events to the real Zoho CRM org: unset SANDBOX "
                "and set the ZOHO_CRM_* credentials as for `serve`"
            ]
        )
    max_future_skew = timedelta(seconds=settings.event_time_max_skew_seconds)
    planner = Planner.from_directory(
        mappings_dir=settings.mappings_dir,
        schemas_dir=settings.schemas_dir,
        max_future_skew=max_future_skew,
    )
    client = ZohoClient(zoho_settings(settings))
    journal = SqliteJournal(journal_path)
    processor = EventProcessor(
        planner,
        Runner(client),
        journal,
        budget_seconds=settings.event_time_budget_seconds,
        lock_dir=settings.lock_dir,
        max_future_skew=max_future_skew,
    )

    def close() -> None:
        journal.close()
        client.close()

    return processor, close


def _journal_errors() -> tuple[type[Exception], ...]:
    """Return the errors that opening or reading a journal file raises.

    They are `JournalSchemaError` for a journal of a newer connector, `JournalBusyError` when
    another process keeps it locked, `sqlite3.DatabaseError` for a file that is not a journal,
    and `OSError` for a path that cannot be opened.
    """
    from engine.journal import JournalBusyError
    from engine.journal.sqlite import JournalSchemaError

    return (JournalSchemaError, JournalBusyError, sqlite3.DatabaseError, OSError)


def _journal_file_problem(journal_path: Path) -> str | None:
    """Return why `journal_path` cannot be a journal file, or `None` when it may be one."""
    if not journal_path.exists():
        return f"journal {journal_path} not found"
    if not journal_path.is_file():
        return f"journal {journal_path} is not a regular file"
    return None


def _journal_error_text(journal_path: Path, error: Exception) -> str:
    from engine.journal import JournalBusyError
    from engine.journal.sqlite import JournalSchemaError

    if isinstance(error, JournalSchemaError | JournalBusyError):
        return str(error)
    if isinstance(error, OSError):
        return f"journal {journal_path} cannot be read: {error.strerror or error}"
    return f"journal {journal_path} cannot be read: {error}"


def _journal_unusable(problem: str) -> int:
    print(
        f"error: {problem}; set JOURNAL_PATH or --journal to the service's journal file",
        file=sys.stderr,
    )
    return EXIT_USAGE


def _write_output(write: Callable[[TextIO], None]) -> int:
    """Write the command's output to stdout, and stop quietly when the reader has gone.

    A reader such as `head` closes the pipe once it has enough lines. That is no error, so the
    status stays 0, and stdout is pointed at the null device so that the interpreter's final
    flush does not report the broken pipe again.
    """
    try:
        write(sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    return EXIT_OK


def _replay_line(outcome: dict[str, Any]) -> str:
    if outcome["outcome"] == "failed":
        return f"{outcome['event_id']}  failed  {outcome['error']}: {outcome['message']}"
    return f"{outcome['event_id']}  {outcome['outcome']}  {outcome['message']}"


# Arguments


def _add_journal_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"journal file (default: JOURNAL_PATH, else {DEFAULT_JOURNAL_PATH})",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        metavar="FILE",
        help="file of environment variables; variables already set in the environment win "
        "(default: .env)",
    )


def _add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="output a table for people or JSON for scripts (default text)",
    )


def _journal_path(args: argparse.Namespace) -> Path:
    """Return `--journal`, else the journal path of the configuration; raise `ConfigError`."""
    if args.journal is not None:
        return Path(args.journal)
    return Settings.from_env(env_file=args.env_file, require_secrets=False).journal_path


def _since(text: str) -> datetime:
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = match.groups()
        try:
            return datetime.now(UTC) - timedelta(**{_DURATION_UNITS[unit]: int(amount)})
        except OverflowError:
            raise argparse.ArgumentTypeError(
                f"invalid age {text!r}: it reaches before the year 1; use a shorter age or an "
                "ISO 8601 date such as 2026-12-04"
            ) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use an ISO 8601 date or time such as 2026-12-04 or "
            "2026-12-04T20:00:00+00:00, or an age such as 30m, 12h, 7d"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: use a whole number above 0")
    return number


# Output


def _entry_json(entry: JournalEntry) -> dict[str, Any]:
    return {
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "outcome": str(entry.outcome),
        "account_key": entry.account_key,
        "sim_keys": list(entry.sim_keys),
        "received_at": entry.received_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
        "event_time": entry.event_time.isoformat() if entry.event_time else None,
        "attempts": entry.attempts,
        "duplicates": entry.duplicates,
        "error": entry.error_code,
        "message": entry.error_message,
        "steps": [step.as_dict() for step in entry.steps],
    }


def _print_table(entries: Sequence[JournalEntry], out: TextIO) -> None:
    if not entries:
        print("no events", file=out)
        return
    header = ("RECEIVED (UTC)", "EVENT ID", "TYPE", "OUTCOME", "ATTEMPTS", "ACCOUNT", "ERROR")
    rows = [
        (
            entry.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            entry.event_id,
            entry.event_type or "-",
            str(entry.outcome),
            str(entry.attempts),
            entry.account_key or "-",
            f"{entry.error_code}: {entry.error_message}" if entry.error_code else "",
        )
        for entry in entries
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(6)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:6], widths, strict=True)]
        print("  ".join([*cells, row[6]]).rstrip(), file=out)
