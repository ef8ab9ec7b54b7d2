"""`zoho-connector validate`: check mapping and schema files, as CI and editors need.

Exit status: 0 when there are no findings, 1 when there are, 2 for a usage error such as a path
that does not exist or `-`, because findings need a file name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="mapping directories, mapping files or schema files to check "
        "(default: the repository's mappings/ and schemas/)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "github"),
        default="text",
        help="text prints FILE:LINE:COL: KIND: message; github prints GitHub Actions "
        "annotations (default: text)",
    )


def run(args: argparse.Namespace) -> int:
    from engine.events.validator import DEFAULT_SCHEMAS_DIR
    from engine.mapping import DEFAULT_MAPPINGS_DIR, lint_paths

    paths = list(args.paths) or [DEFAULT_MAPPINGS_DIR, DEFAULT_SCHEMAS_DIR]
    if any(str(path) == "-" for path in paths):
        print(
            "zoho-connector validate: reading standard input (-) is not supported; "
            "give the path of a mapping directory, mapping file or schema file",
            file=sys.stderr,
        )
        return EXIT_USAGE
    missing = [path for path in paths if not path.exists()]
    if missing:
        for path in missing:
            print(f"zoho-connector validate: {path}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE

    findings = lint_paths(paths)
    for finding in findings:
        text = finding.as_github_annotation() if args.format == "github" else finding.as_text()
        print(text)

    if findings:
        print(f"{len(findings)} finding(s)", file=sys.stderr)
        return EXIT_FINDINGS
    print(f"OK: {', '.join(str(path) for path in paths)}", file=sys.stderr)
    return EXIT_CLEAN
