"""`zoho-connector plan EVENT.json`: show the Zoho CRM calls an event would cause.

Nothing is sent anywhere. Exit status 0 means a plan was printed, also for an ignored event
type. Exit status 1 means the event is invalid, its type has no action plan, or the mappings are
invalid. Exit status 2 is a usage error, such as a file that cannot be read or is not JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_PLANNED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event", type=Path, metavar="EVENT.json", help="the NSPS event body")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for reading, json for tools (default: text)",
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
    from engine.errors import ConnectorError
    from engine.mapping import MappingInvalidError
    from engine.planning.planner import Planner
    from engine.planning.render import plan_as_dict, plan_as_text

    try:
        body = json.loads(args.event.read_text(encoding="utf-8"))
    except OSError as error:
        print(f"zoho-connector plan: cannot read {args.event}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        print(f"zoho-connector plan: {args.event} is not JSON: {error}", file=sys.stderr)
        return EXIT_USAGE

    try:
        planner = Planner.from_directory(args.mappings, args.schemas)
    except MappingInvalidError as error:
        for finding in error.findings:
            print(finding.as_text(), file=sys.stderr)
        return EXIT_REJECTED

    try:
        plan = planner.plan(body)
    except ConnectorError as error:
        print(json.dumps(error.to_body(), indent=2, ensure_ascii=False))
        return EXIT_REJECTED

    if args.format == "json":
        print(json.dumps(plan_as_dict(plan), indent=2, ensure_ascii=False))
    else:
        print(plan_as_text(plan))
    return EXIT_PLANNED
