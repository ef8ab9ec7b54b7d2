"""`zoho-connector plan EVENT.json [EVENT.json ...]`: show the Zoho CRM calls events would cause.

Nothing is sent anywhere. The mappings are loaded once and each file is planned on its own, in
the order given. Exit status 0 means a plan was printed for every file, also for an ignored
event type. Exit status 1 means an event is invalid, its type has no action plan, or the
mappings are invalid. Exit status 2 is a usage error, and standard error gets one line for each
such file. A file is a usage error when it cannot be read or is larger than 1 MiB, the server's
default MAX_BODY_BYTES. It is one too when the HTTP endpoint would reject it as JSON: not UTF-8,
not valid JSON, nested too deeply or holding an integer with too many digits. With
several files the highest of these statuses is returned. The file name `-` reads the event from
standard input.

Standard output carries only the plans. Warnings logged while planning, such as a value missing
from a value_map, go to standard error as one line each with their fields (field mapping,
field and, for an enumeration field, the value).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.planning.plan import Plan
    from engine.planning.planner import Planner

EXIT_PLANNED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

STDIN_NAME = "-"


class _WarningFormatter(logging.Formatter):
    """Format a record as `zoho-connector plan: warning: message  name=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        from engine.service.logs import record_fields

        fields = " ".join(f"{name}={value!r}" for name, value in record_fields(record).items())
        text = f"zoho-connector plan: {record.levelname.lower()}: {record.getMessage()}"
        return f"{text}  {fields}" if fields else text


def _warning_handler() -> logging.Handler:
    """Return a handler that writes warnings and errors to the current stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_WarningFormatter())
    return handler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "events",
        nargs="+",
        type=Path,
        metavar="EVENT.json",
        help="NSPS event bodies, one event per file; - reads one event from standard input",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for reading, json for tools (default: text). With several files, text "
        "puts a `==> FILE <==` line before each plan, and json prints one array of "
        '{"file", "plan"} or {"file", "error"} objects, where "error" is null for a file '
        "that cannot be read as JSON",
    )
    parser.add_argument(
        "--mappings",
        type=Path,
        metavar="DIR",
        help="mappings directory (default: the repository's mappings/)",
    )
    parser.add_argument(
        "--schemas",
        type=Path,
        metavar="DIR",
        help="schemas directory (default: the repository's schemas/)",
    )


def run(args: argparse.Namespace) -> int:
    # The handler is removed again on return, so that a caller in the same process (a test,
    # say) keeps the logging setup it had.
    handler = _warning_handler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        return _run(args)
    finally:
        root.removeHandler(handler)


def _run(args: argparse.Namespace) -> int:
    from engine.mapping import MappingInvalidError
    from engine.planning.planner import Planner

    try:
        planner = Planner.from_directory(args.mappings, args.schemas)
    except MappingInvalidError as error:
        for finding in error.findings:
            print(finding.as_text(), file=sys.stderr)
        return EXIT_REJECTED

    results = [_plan_file(planner, path) for path in args.events]

    if len(results) == 1:
        _print_single(results[0], args.format)
    elif args.format == "json":
        print(json.dumps([_json_entry(result) for result in results], indent=2, ensure_ascii=False))
    else:
        blocks = [f"==> {result.path} <==\n{_text(result)}" for result in results]
        print("\n\n".join(blocks))
    return max(result.status for result in results)


@dataclass(frozen=True)
class _FileResult:
    """The outcome of planning one event file: a plan, a rejection body, or neither."""

    path: Path
    status: int
    plan: Plan | None = None
    rejection: dict[str, Any] | None = None


def _plan_file(planner: Planner, path: Path) -> _FileResult:
    """Plan one event file. A file that cannot be read or parsed is reported on stderr."""
    from engine.config import DEFAULT_MAX_BODY_BYTES
    from engine.errors import ConnectorError, EventValidationError
    from engine.service.resources import parse_json

    try:
        raw = _read_limited(path, DEFAULT_MAX_BODY_BYTES)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        print(f"zoho-connector plan: cannot read {path}: {reason}", file=sys.stderr)
        return _FileResult(path, EXIT_USAGE)
    if len(raw) > DEFAULT_MAX_BODY_BYTES:
        print(
            f"zoho-connector plan: {path} is larger than the limit of {DEFAULT_MAX_BODY_BYTES} "
            "bytes for one event",
            file=sys.stderr,
        )
        return _FileResult(path, EXIT_USAGE)

    # The same parser as the HTTP endpoint, so a file plans exactly when a POST of it would.
    try:
        body = parse_json(raw)
    except EventValidationError as error:
        print(f"zoho-connector plan: {path}: {error.message}", file=sys.stderr)
        return _FileResult(path, EXIT_USAGE)

    try:
        plan = planner.plan(body)
    except ConnectorError as error:
        return _FileResult(path, EXIT_REJECTED, rejection=error.to_body())
    return _FileResult(path, EXIT_PLANNED, plan=plan)


def _read_limited(path: Path, limit: int) -> bytes:
    """Return at most `limit + 1` bytes of `path`, or of standard input for `-`."""
    if str(path) == STDIN_NAME:
        return sys.stdin.buffer.read(limit + 1)
    with path.open("rb") as file:
        return file.read(limit + 1)


def _print_single(result: _FileResult, output_format: str) -> None:
    from engine.planning.render import plan_as_dict

    if result.rejection is not None:
        print(json.dumps(result.rejection, indent=2, ensure_ascii=False))
    elif result.plan is not None and output_format == "json":
        print(json.dumps(plan_as_dict(result.plan), indent=2, ensure_ascii=False))
    elif result.plan is not None:
        print(_text(result))


def _json_entry(result: _FileResult) -> dict[str, Any]:
    from engine.planning.render import plan_as_dict

    entry: dict[str, Any] = {"file": str(result.path)}
    if result.plan is not None:
        entry["plan"] = plan_as_dict(result.plan)
    elif result.rejection is not None:
        entry["error"] = result.rejection
    else:
        entry["error"] = None
    return entry


def _text(result: _FileResult) -> str:
    from engine.planning.render import plan_as_text

    if result.plan is not None:
        return plan_as_text(result.plan)
    if result.rejection is not None:
        return json.dumps(result.rejection, indent=2, ensure_ascii=False)
    return "not planned: the file cannot be read as JSON (see the message above)"
