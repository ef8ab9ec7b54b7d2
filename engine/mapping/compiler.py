"""Compiling mapping documents into `CompiledMappings`, collecting every finding on the way.

The compiler checks the documents against the mapping language schema and merges the files of a
directory. A part that breaks the schema (a module, field mapping, field, action plan or step) is
left out of the later checks, and the rest of its document is still checked. The compiler then
resolves every reference (module, field, field mapping, step), checks every
path against the event schema, compiles every expression and checks value types against the
module definitions. It reports all findings at once and returns compiled mappings only when there
are none.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from engine.events.paths import format_path
from engine.mapping.action_plans import ActionPlanCompiler
from engine.mapping.context import SECTIONS, Located
from engine.mapping.documents import MAX_QUOTED_LENGTH, SourceDocument, quote_value, shorten
from engine.mapping.field_mappings import FieldMappingCompiler
from engine.mapping.findings import Finding, FindingKind, did_you_mean, known_list
from engine.mapping.model import CompiledActionPlan, CompiledMappings, ModuleStrategy
from engine.mapping.modules import FieldDefinition, ModuleDefinition
from engine.planning.plan import Strategy

MAX_MESSAGE_LENGTH = 300
"""Maximum length of a schema message taken from jsonschema."""


class MappingCompiler(FieldMappingCompiler, ActionPlanCompiler):
    """Compiles one set of mapping documents; create a new one per directory."""

    def __init__(
        self,
        language_schema: dict[str, Any],
        modules: dict[str, ModuleDefinition],
        event_schema: dict[str, Any],
    ) -> None:
        super().__init__(modules, event_schema)
        self.language = Draft202012Validator(language_schema)

    def compile(self, documents: Iterable[SourceDocument]) -> CompiledMappings | None:
        """Return the compiled mappings, or None when there are findings (see `self.findings`)."""
        documents = list(documents)
        self._remember_names(documents)
        for document in documents:
            self._check_language(document)
        sections = self._merge(documents)

        strategies = self._compile_strategies(sections["modules"])
        mappings = self._compile_field_mappings(sections["field_mappings"])
        plans = self._compile_action_plans(sections["action_plans"], strategies, mappings)
        ignored = self._compile_ignored(documents, plans)

        if self.findings:
            return None
        return CompiledMappings(
            action_plans=MappingProxyType(plans),
            ignored=frozenset(ignored),
            modules=MappingProxyType(strategies),
        )

    def _check_language(self, document: SourceDocument) -> None:
        """Report each language schema error and mark the part of the document it breaks."""
        if document.data is None:
            return
        for error in self.language.iter_errors(document.data):
            self.findings.append(self._language_finding(document, error))
            path = tuple(error.absolute_path)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                allowed = error.schema.get("properties") or {}
                unknown = [key for key in error.instance if key not in allowed]
                for key in unknown:
                    self._mark_schema_broken(document, _schema_part((*path, key)))
            else:
                self._mark_schema_broken(document, _schema_part(path))

    def _language_finding(self, document: SourceDocument, error: ValidationError) -> Finding:
        path = tuple(error.absolute_path)
        keyword = error.validator
        if keyword == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list((error.schema.get("properties") or {}).keys())
            unknown = [key for key in error.instance if key not in allowed]
            name = str(unknown[0]) if unknown else "?"
            hint = did_you_mean(name, allowed) or f" (allowed keys: {known_list(allowed)})"
            message = f'unknown key "{name}"{hint}'
            return document.finding((*path, name), FindingKind.SCHEMA, message, key=True)
        if keyword == "required":
            return document.finding(
                path, FindingKind.SCHEMA, f"{error.message}; add it here", key=True
            )
        if keyword == "enum":
            allowed = [str(value) for value in error.validator_value]
            hint = did_you_mean(str(error.instance), allowed)
            message = f'"{shorten(str(error.instance))}" is not one of {", ".join(allowed)}{hint}'
            return document.finding(path, FindingKind.SCHEMA, message)
        where = format_path(path) if path else "the document"
        message = _shorten_message(error.message, error.instance)
        return document.finding(path, FindingKind.SCHEMA, f"{where}: {message}")

    def _merge(self, documents: list[SourceDocument]) -> dict[str, dict[str, Located]]:
        sections: dict[str, dict[str, Located]] = {name: {} for name in SECTIONS}
        for document in documents:
            data = document.data if isinstance(document.data, dict) else {}
            for section in SECTIONS:
                section_data = data.get(section)
                if not isinstance(section_data, dict):
                    continue
                for name, value in section_data.items():
                    located = Located(document, (section, name), value)
                    if self._has_schema_findings(located):
                        continue
                    earlier = sections[section].get(name)
                    if earlier is not None:
                        line, column = earlier.document.position(earlier.path, key=True)
                        self.findings.append(
                            located.finding(
                                FindingKind.DUPLICATE_NAME,
                                f'{section} "{name}" is already defined at '
                                f"{earlier.document.file}:{line}:{column}; keep one of them",
                                key=True,
                            )
                        )
                        continue
                    sections[section][name] = located
        return sections

    def _compile_strategies(self, entries: dict[str, Located]) -> dict[str, ModuleStrategy]:
        strategies = {}
        for name, entry in entries.items():
            strategy = self._compile_strategy(name, entry)
            if strategy is not None:
                strategies[name] = strategy
        return strategies

    def _compile_strategy(self, name: str, entry: Located) -> ModuleStrategy | None:
        module = self._module(name, entry, key=True)
        if module is None:
            return None
        key_field = self._field(module, entry.at("key_field"))
        if key_field is None:
            return None

        strategy = Strategy(entry.data["strategy"])
        check_fields = tuple(entry.data.get("duplicate_check_fields") or ())
        if strategy is Strategy.UPSERT and not self._check_upsert_fields(
            module, key_field, check_fields, entry
        ):
            return None
        return ModuleStrategy(module, strategy, key_field, check_fields)

    def _check_upsert_fields(
        self,
        module: ModuleDefinition,
        key_field: FieldDefinition,
        check_fields: tuple[str, ...],
        entry: Located,
    ) -> bool:
        """Return whether Zoho can upsert on these fields; report each reason it cannot."""
        if not check_fields:
            self.findings.append(
                entry.at("strategy").finding(
                    FindingKind.INVALID_STRATEGY,
                    f"strategy upsert needs duplicate_check_fields; add [{key_field.name}]",
                )
            )
            return False

        count = len(self.findings)
        if key_field.name not in check_fields:
            self.findings.append(
                entry.at("duplicate_check_fields").finding(
                    FindingKind.INVALID_STRATEGY,
                    f"duplicate_check_fields must contain the key field {key_field.name}",
                )
            )
        for index, field_name in enumerate(check_fields):
            definition = self._field(module, entry.at("duplicate_check_fields", index))
            if definition is not None and not definition.unique:
                self.findings.append(
                    entry.at("duplicate_check_fields", index).finding(
                        FindingKind.INVALID_STRATEGY,
                        f"{module.name}.{field_name} is not unique, so Zoho cannot upsert on it; "
                        "mark it `unique: true` in crm-modules.yaml (and in Zoho) or use "
                        "strategy search",
                    )
                )
        return len(self.findings) == count

    def _compile_ignored(
        self, documents: list[SourceDocument], plans: dict[str, CompiledActionPlan]
    ) -> list[str]:
        ignored: list[str] = []
        for document in documents:
            data = document.data if isinstance(document.data, dict) else {}
            ignore = data.get("ignore")
            if not isinstance(ignore, list):
                continue
            for index, event_type in enumerate(ignore):
                located = Located(document, ("ignore", index), event_type)
                if self._has_schema_findings(located):
                    continue
                if event_type in plans or event_type in self.defined_names("action_plans"):
                    self.findings.append(
                        located.finding(
                            FindingKind.PLANNED_AND_IGNORED,
                            f"{event_type} has an action plan and is ignored too; remove one",
                        )
                    )
                ignored.append(event_type)
        return ignored


def _schema_part(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """Return the path of the part that a schema error at `path` leaves out of later checks.

    That part is a step or a field when the error lies inside one, else the whole module, field
    mapping, action plan or `ignore` entry, or the document itself for an error at its top.
    """
    if (
        len(path) >= 4
        and path[0] in ("field_mappings", "action_plans")
        and path[2]
        in (
            "fields",
            "steps",
        )
    ):
        return path[:4]
    return path[:2]


def _shorten_message(message: str, instance: Any) -> str:
    """Cut the document value that jsonschema quotes in `message` to a few dozen characters.

    A whole file read by mistake (a symlink to another file, say) must not be echoed back.
    """
    quoted = repr(instance)
    if len(quoted) > MAX_QUOTED_LENGTH:
        message = message.replace(quoted, quote_value(instance))
    if len(message) > MAX_MESSAGE_LENGTH:
        message = f"{message[:MAX_MESSAGE_LENGTH]}..."
    return message
