"""The `zoho-connector` command line.

Each subcommand lives in a module of this package with two functions:
`add_arguments(parser: argparse.ArgumentParser) -> None` and `run(args) -> int`. A module that
serves two subcommands names them `add_<subcommand>_arguments` and `run_<subcommand>` instead,
as `journal` does for `events` and `replay`.
Every subcommand module is imported to build the parser, so a module keeps its heavy imports
(falcon, requests, jsonschema) inside `run`, and `validate` and `plan` start fast.
"""

from __future__ import annotations

import argparse
import importlib
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
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
