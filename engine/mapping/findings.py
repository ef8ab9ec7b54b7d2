"""Findings: problems in mapping and schema files, as data.

A finding carries the file, line and column (both 1-based) and a kind from the closed list
`FindingKind`. `validate` prints findings, the server refuses to start on them, and CI shows them
as GitHub annotations; all three render the same `Finding` objects.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class FindingKind(StrEnum):
    """Every kind of finding. The list is closed: docs/mapping-language.md documents each one."""

    YAML_SYNTAX = "yaml-syntax"
    """The file is not valid YAML."""
    JSON_SYNTAX = "json-syntax"
    """A schema file is not valid JSON."""
    DUPLICATE_KEY = "duplicate-key"
    """A YAML mapping has the same key twice; YAML loaders would silently keep the last one."""
    SCHEMA = "schema"
    """The document breaks the mapping language schema (wrong key, wrong type, missing key)."""
    INVALID_JSON_SCHEMA = "invalid-json-schema"
    """A file in `schemas/` is not a valid JSON Schema (draft 2020-12)."""
    MISSING_FILE = "missing-file"
    """A required file (module definitions, event schema, any mapping file) is missing."""
    DUPLICATE_NAME = "duplicate-name"
    """A module, field mapping or action plan is defined in two places."""
    UNKNOWN_MODULE = "unknown-module"
    """A module is not defined in the module definitions (`crm-modules.yaml`)."""
    UNKNOWN_FIELD = "unknown-field"
    """A Zoho field is not defined for its module in the module definitions."""
    UNKNOWN_MAPPING = "unknown-mapping"
    """A step writes a field mapping that does not exist."""
    UNKNOWN_STEP = "unknown-step"
    """A lookup refers to a step id that does not exist in the action plan."""
    FORWARD_REFERENCE = "forward-reference"
    """A lookup refers to the step itself or to a later step, whose record id is not known yet."""
    DUPLICATE_FIELD = "duplicate-field"
    """One field mapping has two entries for the same Zoho field, so one value would be lost."""
    DUPLICATE_STEP_ID = "duplicate-step-id"
    """Two steps of one action plan have the same id."""
    UNKNOWN_SOURCE_PATH = "unknown-source-path"
    """A path does not exist in the NSPS event schema."""
    EXPRESSION_SYNTAX = "expression-syntax"
    """A Jinja2 expression does not compile."""
    UNSAFE_EXPRESSION = "unsafe-expression"
    """A Jinja2 expression uses a name, private attribute or value size that the sandbox stops
    at run time."""
    TYPE_MISMATCH = "type-mismatch"
    """A value or a source cannot have the type of the Zoho field it is written to."""
    MODULE_MISMATCH = "module-mismatch"
    """A step's module differs from its field mapping's module, or a lookup points to a step of
    another module than the lookup field's."""
    INVALID_STRATEGY = "invalid-strategy"
    """A module's strategy cannot work: the key field is not unique, or not among
    `duplicate_check_fields`."""
    INVALID_STEP = "invalid-step"
    """A step's action and settings contradict each other (for example `link` with no lookup)."""
    PLANNED_AND_IGNORED = "planned-and-ignored"
    """An event type has an action plan and is also listed under `ignore`."""


@dataclass(frozen=True)
class Finding:
    """One problem at one place in one file."""

    file: str
    line: int
    column: int
    kind: FindingKind
    message: str

    def as_text(self) -> str:
        """Render as `FILE:LINE:COL: KIND: message`, the form editors and terminals link."""
        return f"{self.file}:{self.line}:{self.column}: {self.kind}: {self.message}"

    def as_github_annotation(self) -> str:
        """Render as a GitHub Actions workflow command that annotates the line in a pull request."""
        message = _escape_annotation(f"{self.kind}: {self.message}")
        file = _escape_annotation_property(self.file)
        return f"::error file={file},line={self.line},col={self.column}::{message}"


class MappingInvalidError(Exception):
    """The mapping or schema files have findings, so no plan can be made from them."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        count = len(self.findings)
        lines = "\n".join(finding.as_text() for finding in self.findings)
        super().__init__(f"{count} problem(s) in the mapping files:\n{lines}")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ` (did you mean "x"?)` for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{matches[0]}"?)' if matches else ""


def known_list(candidates: Iterable[str], limit: int = 12) -> str:
    names = sorted(candidates)
    if not names:
        return "none"

    listed = ", ".join(names[:limit])
    if len(names) > limit:
        listed += ", ..."
    return listed


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.file, f.line, f.column, f.kind, f.message))


def _escape_annotation(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_annotation_property(text: str) -> str:
    return _escape_annotation(text).replace(":", "%3A").replace(",", "%2C")
