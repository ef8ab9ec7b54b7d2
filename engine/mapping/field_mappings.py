"""Compiling field mappings: each field's Zoho field, source, type and value checks."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from engine.events.paths import format_path
from engine.mapping.context import CompilerBase, Located
from engine.mapping.findings import FindingKind, did_you_mean
from engine.mapping.model import (
    CompiledField,
    CompiledFieldMapping,
    TooLong,
    ValueSource,
    WhenEmpty,
)
from engine.mapping.modules import FieldDefinition, ModuleDefinition
from engine.mapping.types import (
    ACCEPTED_SOURCE_TYPES,
    ValueConversionError,
    convert_value,
    is_compatible,
)
from engine.planning.plan import EventPath

FieldEntries = tuple[Located, ...]
"""The document entries of a compiled field mapping's fields, in the order of its `fields`."""


class FieldMappingCompiler(CompilerBase):
    """Compiles the `field_mappings:` section."""

    def _compile_field_mappings(
        self, entries: dict[str, Located]
    ) -> dict[str, tuple[CompiledFieldMapping, FieldEntries]]:
        mappings = {}
        for name, entry in entries.items():
            compiled = self._compile_field_mapping(name, entry)
            if compiled is not None:
                mappings[name] = compiled
        return mappings

    def _compile_field_mapping(
        self, name: str, entry: Located
    ) -> tuple[CompiledFieldMapping, FieldEntries] | None:
        """Compile a field mapping with the fields that have no findings.

        The result is marked incomplete when a field is left out, so that the steps writing the
        mapping are still checked. It is None only without a valid module or input.
        """
        module = self._module(entry.data["module"], entry.at("module"))
        input_path = self._input_path(entry.at("input"))
        if module is None or input_path is None:
            return None

        fields = []
        field_entries = []
        first_entries: dict[str, Located] = {}
        for index, _ in enumerate(entry.data["fields"]):
            field_entry = entry.at("fields", index)
            if self._has_schema_findings(field_entry):
                continue
            self._check_duplicate_field(module, field_entry, first_entries)
            compiled = self._compile_field(module, input_path, field_entry)
            if compiled is not None:
                fields.append(compiled)
                field_entries.append(field_entry)
        complete = len(fields) == len(entry.data["fields"])
        mapping = CompiledFieldMapping(name, module.name, input_path, tuple(fields), complete)
        return mapping, tuple(field_entries)

    def _check_duplicate_field(
        self, module: ModuleDefinition, entry: Located, first_entries: dict[str, Located]
    ) -> None:
        """Report a second entry for a Zoho field, whose value would replace the first one's."""
        name = str(entry.data["field"])
        first = first_entries.setdefault(name, entry)
        if first is entry:
            return
        line, _ = first.document.position(first.path)
        self.findings.append(
            entry.at("field").finding(
                FindingKind.DUPLICATE_FIELD,
                f"{module.name} field {name} is already set by the entry on line {line}, and "
                "only one value can be written; merge the two entries into one, for example "
                "with an expression",
            )
        )

    def _compile_field(
        self, module: ModuleDefinition, input_path: EventPath, entry: Located
    ) -> CompiledField | None:
        data = entry.data
        definition = self._field(module, entry.at("field"))
        source = self._value_source(entry, input_path, "a field")
        fallback = None
        if "default_on_create" in data:
            fallback = self._value_source(
                entry.at("default_on_create"), input_path, "default_on_create"
            )
        condition = self._expression(entry.at("condition"), input_path)
        if definition is None or source is None:
            return None
        if "default_on_create" in data and fallback is None:
            return None
        if "condition" in data and condition is None:
            return None

        if definition.type == "lookup":
            self.findings.append(
                entry.at("field").finding(
                    FindingKind.TYPE_MISMATCH,
                    f"{definition.name} is a lookup; set it with `lookups:` on a step, "
                    "not in a field mapping",
                )
            )
            return None
        field_type = self._field_type(definition, entry)
        if field_type is None:
            return None
        self._check_values(definition, field_type, entry)
        self._check_source_type(definition, field_type, source, input_path, entry)

        value_map = data.get("value_map")
        return CompiledField(
            field=definition,
            source=source,
            type=field_type,
            value_map=MappingProxyType(dict(value_map)) if value_map else None,
            default=data.get("default"),
            default_on_create=fallback,
            condition=condition,
            when_empty=WhenEmpty(data.get("when_empty", "skip")),
            max_length=data.get("max_length", definition.length),
            on_too_long=TooLong(data.get("on_too_long", "error")),
        )

    def _field_type(self, definition: FieldDefinition, entry: Located) -> str | None:
        declared = entry.data.get("type")
        if declared is None:
            return definition.type
        if not is_compatible(declared, definition.type):
            self.findings.append(
                entry.at("type").finding(
                    FindingKind.TYPE_MISMATCH,
                    f"type {declared} cannot be written to {definition.name}, which is "
                    f"{definition.type} in crm-modules.yaml; use type {definition.type}",
                )
            )
            return None
        return str(declared)

    def _check_values(self, definition: FieldDefinition, field_type: str, entry: Located) -> None:
        constants: list[tuple[Located, Any]] = []
        if "default" in entry.data:
            constants.append((entry.at("default"), entry.data["default"]))
        if "value" in entry.data and entry.data["value"] is not None:
            constants.append((entry.at("value"), entry.data["value"]))
        fallback = entry.data.get("default_on_create")
        if isinstance(fallback, dict) and fallback.get("value") is not None:
            constants.append((entry.at("default_on_create", "value"), fallback["value"]))
        for target, value in (entry.data.get("value_map") or {}).items():
            constants.append((entry.at("value_map", target), value))
            if (
                field_type == "picklist"
                and definition.values
                and value is not None
                and str(value) not in definition.values
            ):
                hint = did_you_mean(str(value), definition.values)
                self.findings.append(
                    entry.at("value_map", target).finding(
                        FindingKind.TYPE_MISMATCH,
                        f'"{value}" is not a value of picklist {definition.name}{hint}; '
                        "use one of its values or add it to crm-modules.yaml",
                    )
                )

        for located, value in constants:
            if value is None or value == "":
                continue
            try:
                convert_value(value, field_type)
            except ValueConversionError as error:
                self.findings.append(
                    located.finding(
                        FindingKind.TYPE_MISMATCH,
                        f"{value!r} {error} for {definition.name} ({field_type})",
                    )
                )

    def _check_source_type(
        self,
        definition: FieldDefinition,
        field_type: str,
        source: ValueSource,
        input_path: EventPath,
        entry: Located,
    ) -> None:
        if source.path is None or entry.data.get("value_map"):
            return
        full_path = source.path if source.absolute else (*input_path, *source.path)
        json_types = self.event_paths.check(full_path).json_types
        accepted = ACCEPTED_SOURCE_TYPES.get(field_type, frozenset())
        if json_types and not json_types & accepted:
            self.findings.append(
                entry.at("source").finding(
                    FindingKind.TYPE_MISMATCH,
                    f"{format_path(full_path)} is {' or '.join(sorted(json_types))} in the event "
                    f"schema and cannot be written to {definition.name} ({field_type}); "
                    "choose another source or add a value_map",
                )
            )
