"""Shared state and checks of the mapping compiler: names, fields, paths and expressions.

`CompilerBase` contains the findings and the lookups that both the field mapping and the action plan
compilers need. Each check appends a finding and returns None when something is wrong, so that
compilation goes on and reports every problem at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.events.paths import format_path, parse_path
from engine.mapping.documents import DocumentPath, SourceDocument
from engine.mapping.expressions import (
    Expression,
    TemplateSyntaxError,
    compile_expression,
    referenced_paths,
    unsafe_parts,
)
from engine.mapping.findings import Finding, FindingKind, did_you_mean
from engine.mapping.model import ValueSource
from engine.mapping.modules import FieldDefinition, ModuleDefinition
from engine.mapping.schema_paths import EventSchemaPaths, PathCheck
from engine.planning.plan import EventPath

SECTIONS = ("modules", "field_mappings", "action_plans")


@dataclass(frozen=True)
class Located:
    """A piece of a document together with the document and the path to it."""

    document: SourceDocument
    path: DocumentPath
    data: Any

    def at(self, *segments: str | int) -> Located:
        data = self.data
        for segment in segments:
            if isinstance(data, dict):
                data = data.get(segment)
            elif isinstance(data, list) and isinstance(segment, int) and segment < len(data):
                data = data[segment]
            else:
                data = None
        return Located(self.document, (*self.path, *segments), data)

    def finding(self, kind: FindingKind, message: str, *, key: bool = False) -> Finding:
        return self.document.finding(self.path, kind, message, key=key)


class CompilerBase:
    """Findings and the checks every part of the compiler shares."""

    def __init__(self, modules: dict[str, ModuleDefinition], event_schema: dict[str, Any]) -> None:
        self.modules = modules
        self.event_paths = EventSchemaPaths(event_schema)
        self.findings: list[Finding] = []
        self.incomplete = False
        """Set when a mapping file could not be read, so names it defines may be missing."""
        self._defined_names: dict[str, list[str]] = {section: [] for section in SECTIONS}
        # file -> paths of the document parts that break the language schema
        self._schema_broken: dict[str, set[DocumentPath]] = {}

    def defined_names(self, section: str) -> list[str]:
        """Names defined in a section by any document, including ones with findings."""
        return self._defined_names[section]

    def is_defined_elsewhere(self, section: str, name: str) -> bool:
        """Return whether a name that did not compile is still defined somewhere.

        That is the case when its definition has findings of its own, or when a file could not
        be read. Such a name is not reported again as unknown where it is used.
        """
        return name in self._defined_names[section] or self.incomplete

    def _remember_names(self, documents: Iterable[SourceDocument]) -> None:
        """Record every defined name first, so that a definition with findings of its own is
        not also reported as unknown where it is used."""
        names: dict[str, list[str]] = {section: [] for section in SECTIONS}
        for document in documents:
            data = document.data if isinstance(document.data, dict) else {}
            for section in SECTIONS:
                section_data = data.get(section)
                if isinstance(section_data, dict):
                    names[section].extend(str(name) for name in section_data)
        self._defined_names = names

    def _mark_schema_broken(self, document: SourceDocument, path: DocumentPath) -> None:
        """Leave the part at `path` out of the reference checks: its shape is not the expected
        one, and its schema finding is reported already."""
        self._schema_broken.setdefault(document.file, set()).add(path)

    def _has_schema_findings(self, entry: Located) -> bool:
        """Return whether the entry, or a part of the document containing it, breaks the
        language schema."""
        broken = self._schema_broken.get(entry.document.file, set())
        return any(entry.path[: len(path)] == path for path in broken)

    def _module(self, name: str, entry: Located, *, key: bool = False) -> ModuleDefinition | None:
        if name in self.modules:
            return self.modules[name]
        hint = did_you_mean(name, self.modules)
        self.findings.append(
            entry.finding(
                FindingKind.UNKNOWN_MODULE,
                f"module {name} is not defined in crm-modules.yaml{hint}",
                key=key,
            )
        )
        return None

    def _field(
        self,
        module: ModuleDefinition,
        entry: Located,
        *,
        name: str | None = None,
        key: bool = False,
    ) -> FieldDefinition | None:
        field_name = name if name is not None else str(entry.data)
        if field_name in module.fields:
            return module.fields[field_name]
        hint = did_you_mean(field_name, module.fields)
        self.findings.append(
            entry.finding(
                FindingKind.UNKNOWN_FIELD,
                f"{module.name} has no field {field_name}{hint}; fields are defined in "
                "crm-modules.yaml",
                key=key,
            )
        )
        return None

    def _input_path(self, entry: Located) -> EventPath | None:
        if entry.data is None:
            return ()
        parsed = self._parse_path(entry)
        if parsed is None:
            return None
        _, path = parsed
        check = self.event_paths.check(path)
        if not check.known:
            self.findings.append(self._unknown_path_finding(entry, path, check, ""))
            return None
        return path

    def _value_source(
        self,
        entry: Located,
        input_path: EventPath,
        owner: str,
        *,
        allow_constant: bool = True,
    ) -> ValueSource | None:
        keys = ("source", "expression", "value") if allow_constant else ("source", "expression")
        present = [key for key in keys if key in entry.data]
        if len(present) != 1:
            self.findings.append(
                entry.finding(
                    FindingKind.SCHEMA,
                    f"{owner} needs exactly one of {', '.join(keys)}; "
                    + (f"found {', '.join(present)}" if present else "found none"),
                    key=True,
                )
            )
            return None

        if present[0] == "value":
            return ValueSource(constant=entry.data["value"])
        if present[0] == "expression":
            expression = self._expression(entry.at("expression"), input_path)
            return ValueSource(expression=expression) if expression is not None else None

        parsed = self._parse_path(entry.at("source"))
        if parsed is None:
            return None
        absolute, path = parsed
        full_path = path if absolute else (*input_path, *path)
        check = self.event_paths.check(full_path)
        if not check.known:
            self.findings.append(
                self._unknown_path_finding(entry.at("source"), full_path, check, "")
            )
            return None
        return ValueSource(path=path, absolute=absolute)

    def _parse_path(self, entry: Located) -> tuple[bool, EventPath] | None:
        try:
            return parse_path(str(entry.data))
        except ValueError as error:
            self.findings.append(entry.finding(FindingKind.SCHEMA, f"invalid path: {error}"))
            return None

    def _expression(self, entry: Located, input_path: EventPath) -> Expression | None:
        if entry.data is None:
            return None
        text = str(entry.data)
        try:
            expression = compile_expression(text)
            problems = unsafe_parts(text)
            chains = referenced_paths(text)
        except TemplateSyntaxError as error:
            self.findings.append(
                entry.finding(
                    FindingKind.EXPRESSION_SYNTAX,
                    f"the Jinja2 expression does not compile: {error.message}",
                )
            )
            return None

        ok = not problems
        for problem in problems:
            self.findings.append(entry.finding(FindingKind.UNSAFE_EXPRESSION, problem))
        for name, path in chains:
            full_path = (*input_path, *path) if name == "input" else path
            check = self.event_paths.check(full_path)
            if not check.known:
                self.findings.append(
                    self._unknown_path_finding(
                        entry, full_path, check, f" (read as {name}.{format_path(path)})"
                    )
                )
                ok = False
        return expression if ok else None

    def _unknown_path_finding(
        self, entry: Located, full_path: EventPath, check: PathCheck, context: str
    ) -> Finding:
        segment = str(full_path[check.failed_at])
        hint = did_you_mean(segment, check.siblings)
        known_part = format_path(full_path[: check.failed_at])
        return entry.finding(
            FindingKind.UNKNOWN_SOURCE_PATH,
            f"{format_path(full_path)}{context} is not in the event schema: {known_part} has no "
            f'"{segment}"{hint}; fix the path, or declare the field in nsps-event.schema.json',
        )
