"""The `zoho-connector` command line.

Each subcommand lives in a module of this package with two functions:
`add_arguments(parser: argparse.ArgumentParser) -> None` and `run(args) -> int`. A module that
serves two subcommands names them `add_<subcommand>_arguments` and `run_<subcommand>` instead,
as `journal` does for `events` and `replay`.
Every subcommand module is imported to build the parser, so a module keeps its heavy imports
(falcon, requests, jsonschema) inside `run`, and `validate` and `plan` start fast.

When the reader of standard output goes away (`zoho-connector plan X | head`), the command
stops without a traceback and exits with status 141 (128 + SIGPIPE), as a shell reports for a
process that SIGPIPE ended. A pipeline under `set -o pipefail` therefore fails on cut output.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from engine import __version__

# subcommand -> (module in this package, help text)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "serve the NSPS webhook (--sandbox runs against the bundled emulator)"),
    "validate": ("validate", "check mapping and schema files; exit 1 when there are findings"),
    "plan": ("plan", "show the Zoho CRM calls an event would cause, without network access"),
    "emulator": ("emulator", "run the local Zoho CRM emulator"),
    "events": ("journal", "list journaled events"),
    "replay": ("journal", "run failed or chosen events again"),
}

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE (13): the status a shell reports for a process that SIGPIPE ended."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoho-connector",
        description="NSPS to Zoho CRM connector driven by JSON Schema and YAML mapping files.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True

    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(f"engine.cli.{module_name}")
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        add_arguments(subparser)
        run = getattr(module, f"run_{name}", None) or module.run
        subparser.set_defaults(handler=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.handler(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would print a second BrokenPipeError, so
        # stdout is pointed at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return status


if __name__ == "__main__":
    sys.exit(main())
