"""Compiling mapping documents into `CompiledMappings`, collecting every finding on the way.

The compiler checks the documents against the mapping language schema, merges the files of a
directory, resolves every reference (module, field, field mapping, step), checks every path
against the event schema, compiles every expression and checks value types against the module
definitions. It reports all findings at once and returns compiled mappings only when there are
none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from engine.events.paths import format_path, parse_path
from engine.mapping.documents import DocumentPath, SourceDocument
from engine.mapping.expressions import TemplateSyntaxError, compile_expression, referenced_paths
from engine.mapping.findings import Finding, FindingKind, did_you_mean, known_list
from engine.mapping.model import (
    CompiledActionPlan,
    CompiledField,
    CompiledFieldMapping,
    CompiledLookup,
    CompiledMappings,
    CompiledStep,
    ModuleStrategy,
    TooLong,
    ValueSource,
    WhenEmpty,
    WhenInputAbsent,
)
from engine.mapping.modules import FieldDefinition, ModuleDefinition
from engine.mapping.schema_paths import EventSchemaPaths
from engine.mapping.types import (
    ACCEPTED_SOURCE_TYPES,
    ValueConversionError,
    convert_value,
    is_compatible,
)
from engine.planning.plan import Action, EventPath, Strategy, WhenAbsent

SECTIONS = ("modules", "field_mappings", "action_plans")

DEFAULT_WHEN_ABSENT = {
    Action.FIND: WhenAbsent.FAIL,
    Action.CREATE: WhenAbsent.CREATE,
    Action.UPDATE: WhenAbsent.SKIP,
    Action.FIND_OR_CREATE: WhenAbsent.CREATE,
    Action.LINK: WhenAbsent.CREATE,
    Action.UNLINK: WhenAbsent.CREATE,
}


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


class MappingCompiler:
    """Compiles one set of mapping documents; create a new one per directory."""

    def __init__(
        self,
        language_schema: dict[str, Any],
        modules: dict[str, ModuleDefinition],
        event_schema: dict[str, Any],
    ) -> None:
        self.language = Draft202012Validator(language_schema)
        self.modules = modules
        self.event_paths = EventSchemaPaths(event_schema)
        self.findings: list[Finding] = []
        self._all_mapping_names: list[str] = []
        self._all_strategy_names: list[str] = []
        self._all_plan_names: list[str] = []

    def compile(self, documents: Iterable[SourceDocument]) -> CompiledMappings | None:
        """Return the compiled mappings, or None when there are findings (see `self.findings`)."""
        valid_documents = [doc for doc in documents if self._check_language(doc)]
        self._remember_names(valid_documents)
        sections = self._merge(valid_documents)

        strategies = self._compile_strategies(sections["modules"])
        mappings = self._compile_field_mappings(sections["field_mappings"])
        plans = self._compile_action_plans(sections["action_plans"], strategies, mappings)
        ignored = self._compile_ignored(valid_documents, plans)

        if self.findings:
            return None
        return CompiledMappings(
            action_plans=MappingProxyType(plans),
            ignored=frozenset(ignored),
            modules=MappingProxyType(strategies),
        )

    # Language schema and merging

    def _check_language(self, document: SourceDocument) -> bool:
        if document.data is None:
            return True
        errors = list(self.language.iter_errors(document.data))
        for error in errors:
            self.findings.append(self._language_finding(document, error))
        return not errors

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
            message = f"{error.instance!r} is not one of {', '.join(allowed)}{hint}"
            return document.finding(path, FindingKind.SCHEMA, message)
        where = format_path(path)
        return document.finding(path, FindingKind.SCHEMA, f"{where}: {error.message}")

    def _merge(self, documents: list[SourceDocument]) -> dict[str, dict[str, Located]]:
        sections: dict[str, dict[str, Located]] = {name: {} for name in SECTIONS}
        for document in documents:
            data = document.data if isinstance(document.data, dict) else {}
            for section in SECTIONS:
                for name, value in (data.get(section) or {}).items():
                    located = Located(document, (section, name), value)
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

    # Modules

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
        if strategy is Strategy.UPSERT:
            self._check_upsert_fields(module, key_field, check_fields, entry)
        return ModuleStrategy(module, strategy, key_field, check_fields)

    def _check_upsert_fields(
        self,
        module: ModuleDefinition,
        key_field: FieldDefinition,
        check_fields: tuple[str, ...],
        entry: Located,
    ) -> None:
        if not check_fields:
            self.findings.append(
                entry.at("strategy").finding(
                    FindingKind.INVALID_STRATEGY,
                    f"strategy upsert needs duplicate_check_fields; add [{key_field.name}]",
                )
            )
            return
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

    # Field mappings

    def _compile_field_mappings(
        self, entries: dict[str, Located]
    ) -> dict[str, tuple[CompiledFieldMapping, Located]]:
        mappings = {}
        for name, entry in entries.items():
            compiled = self._compile_field_mapping(name, entry)
            if compiled is not None:
                mappings[name] = (compiled, entry)
        return mappings

    def _compile_field_mapping(self, name: str, entry: Located) -> CompiledFieldMapping | None:
        module = self._module(entry.data["module"], entry.at("module"))
        input_path = self._input_path(entry.at("input"))
        if module is None or input_path is None:
            return None

        fields = []
        for index, _ in enumerate(entry.data["fields"]):
            compiled = self._compile_field(module, input_path, entry.at("fields", index))
            if compiled is not None:
                fields.append(compiled)
        if len(fields) != len(entry.data["fields"]):
            return None
        return CompiledFieldMapping(name, module.name, input_path, tuple(fields))

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

    # Action plans

    def _compile_action_plans(
        self,
        entries: dict[str, Located],
        strategies: dict[str, ModuleStrategy],
        mappings: dict[str, tuple[CompiledFieldMapping, Located]],
    ) -> dict[str, CompiledActionPlan]:
        plans = {}
        for event_type, entry in entries.items():
            steps = []
            step_modules: dict[str, str] = {}
            seen: dict[str, Located] = {}
            ok = True
            for index, step_data in enumerate(entry.data["steps"]):
                located = entry.at("steps", index)
                step_id = step_data["id"]
                if step_id in seen:
                    line, _ = seen[step_id].document.position(seen[step_id].path)
                    self.findings.append(
                        located.at("id").finding(
                            FindingKind.DUPLICATE_STEP_ID,
                            f'step id "{step_id}" is already used by the step at line {line}; '
                            "give each step of a plan its own id",
                        )
                    )
                    ok = False
                    continue
                seen[step_id] = located
                step = self._compile_step(
                    located, strategies, mappings, step_modules, list(entry.data["steps"])
                )
                if step is None:
                    ok = False
                    continue
                steps.append(step)
                step_modules[step.id] = step.module.module.name
            if ok:
                plans[event_type] = CompiledActionPlan(event_type, tuple(steps))
        return plans

    def _compile_step(
        self,
        entry: Located,
        strategies: dict[str, ModuleStrategy],
        mappings: dict[str, tuple[CompiledFieldMapping, Located]],
        earlier_steps: dict[str, str],
        all_steps: list[dict[str, Any]],
    ) -> CompiledStep | None:
        data = entry.data
        action = Action(data["action"])
        mapping, mapping_entry = self._step_mapping(entry, mappings)
        if "write" in data and mapping is None:
            return None

        strategy = self._step_module(entry, mapping, strategies)
        if strategy is None:
            return None
        input_path = self._step_input(entry, mapping)
        if input_path is None:
            return None
        if mapping is not None and mapping_entry is not None and input_path != mapping.input:
            self._check_rebound_sources(mapping, mapping_entry, input_path, entry)

        match_field, match_source = self._step_match(entry, action, strategy, input_path)
        if action is not Action.CREATE and match_source is None:
            return None
        lookups = self._step_lookups(entry, action, strategy, earlier_steps, all_steps)
        condition = self._expression(entry.at("condition"), input_path)
        when_absent = self._step_when_absent(entry, action)
        if lookups is None or when_absent is None:
            return None
        if "condition" in data and condition is None:
            return None

        return CompiledStep(
            id=data["id"],
            action=action,
            module=strategy,
            input=input_path,
            match_field=match_field,
            match_source=match_source,
            mapping=mapping,
            lookups=lookups,
            when_absent=when_absent,
            when_input_absent=WhenInputAbsent(data.get("when_input_absent", "fail")),
            condition=condition,
        )

    def _step_mapping(
        self, entry: Located, mappings: dict[str, tuple[CompiledFieldMapping, Located]]
    ) -> tuple[CompiledFieldMapping | None, Located | None]:
        name = entry.data.get("write")
        if name is None:
            return None, None
        if name in mappings:
            return mappings[name]
        if name in self._all_mapping_names:
            return None, None
        hint = did_you_mean(name, self._all_mapping_names)
        self.findings.append(
            entry.at("write").finding(
                FindingKind.UNKNOWN_MAPPING,
                f'field mapping "{name}" is not defined{hint}; define it under field_mappings '
                f"(defined: {known_list(self._all_mapping_names)})",
            )
        )
        return None, None

    def _step_module(
        self,
        entry: Located,
        mapping: CompiledFieldMapping | None,
        strategies: dict[str, ModuleStrategy],
    ) -> ModuleStrategy | None:
        name = entry.data.get("module") or (mapping.module if mapping else None)
        if name is None:
            self.findings.append(
                entry.finding(
                    FindingKind.SCHEMA,
                    "a step needs `module:` or `write:` to know its module",
                    key=True,
                )
            )
            return None
        if mapping is not None and name != mapping.module:
            self.findings.append(
                entry.at("module").finding(
                    FindingKind.MODULE_MISMATCH,
                    f'the step is for module {name} but field mapping "{mapping.name}" writes '
                    f"{mapping.module}; make them the same",
                )
            )
            return None
        if (
            self._module(
                name,
                entry.at("module") if "module" in entry.data else entry.at("write"),
                report=True,
            )
            is None
        ):
            return None
        if name not in strategies:
            if name not in self._all_strategy_names:
                self.findings.append(
                    entry.at("module").finding(
                        FindingKind.UNKNOWN_MODULE,
                        f"module {name} has no strategy; add it under `modules:` with strategy, "
                        "key_field and duplicate_check_fields",
                    )
                )
            return None
        return strategies[name]

    def _step_input(self, entry: Located, mapping: CompiledFieldMapping | None) -> EventPath | None:
        if "input" in entry.data:
            return self._input_path(entry.at("input"))
        return mapping.input if mapping is not None else ()

    def _check_rebound_sources(
        self,
        mapping: CompiledFieldMapping,
        mapping_entry: Located,
        input_path: EventPath,
        step_entry: Located,
    ) -> None:
        for index, compiled in enumerate(mapping.fields):
            field_entry = mapping_entry.at("fields", index)
            for source, located in (
                (compiled.source, field_entry),
                (compiled.default_on_create, field_entry.at("default_on_create")),
            ):
                if source is None or source.absolute or source.path is None:
                    continue
                full_path = (*input_path, *source.path)
                check = self.event_paths.check(full_path)
                if not check.known:
                    line, _ = step_entry.document.position(step_entry.path)
                    self.findings.append(
                        self._unknown_path_finding(
                            located.at("source"),
                            full_path,
                            check,
                            f" when step {step_entry.data['id']} (line {line}) binds input "
                            f"{format_path(input_path)}",
                        )
                    )

    def _step_match(
        self, entry: Located, action: Action, strategy: ModuleStrategy, input_path: EventPath
    ) -> tuple[FieldDefinition | None, ValueSource | None]:
        match = entry.at("match")
        if match.data is None:
            if action is not Action.CREATE:
                self.findings.append(
                    entry.finding(
                        FindingKind.SCHEMA,
                        f"action {action} needs `match:` with the source of "
                        f"{strategy.key_field.name}, e.g. match: {{source: ...}}",
                        key=True,
                    )
                )
            return None, None

        field_name = match.data.get("field", strategy.key_field.name)
        definition = (
            self._field(strategy.module, match.at("field"))
            if "field" in match.data
            else strategy.key_field
        )
        source = self._value_source(match, input_path, "match", allow_constant=False)
        if definition is None or source is None:
            return None, None
        if strategy.strategy is Strategy.UPSERT and field_name not in (
            strategy.duplicate_check_fields
        ):
            self.findings.append(
                match.at("field").finding(
                    FindingKind.INVALID_STRATEGY,
                    f"{strategy.module.name} uses strategy upsert on "
                    f"{', '.join(strategy.duplicate_check_fields)}, so a step cannot match on "
                    f"{field_name}; match on the key field or use strategy search",
                )
            )
            return None, None
        return definition, source

    def _step_lookups(
        self,
        entry: Located,
        action: Action,
        strategy: ModuleStrategy,
        earlier_steps: dict[str, str],
        all_steps: list[dict[str, Any]],
    ) -> tuple[CompiledLookup, ...] | None:
        lookups_data = entry.data.get("lookups") or {}
        compiled = []
        ok = True
        for field_name, step_id in lookups_data.items():
            located = entry.at("lookups", field_name)
            definition = self._field(strategy.module, located, name=field_name, key=True)
            if definition is None:
                ok = False
                continue
            if definition.type != "lookup":
                self.findings.append(
                    located.finding(
                        FindingKind.TYPE_MISMATCH,
                        f"{field_name} is {definition.type}, not a lookup; write it in a field "
                        "mapping instead",
                        key=True,
                    )
                )
                ok = False
                continue
            if step_id is not None and not self._check_lookup_target(
                located, definition, step_id, earlier_steps, all_steps
            ):
                ok = False
                continue
            compiled.append(CompiledLookup(field_name, step_id))

        sets = [lookup for lookup in compiled if lookup.step_id is not None]
        if ok and action is Action.LINK and not sets:
            self.findings.append(
                entry.at("action").finding(
                    FindingKind.INVALID_STEP,
                    "action link needs a lookup that names an earlier step, "
                    "e.g. lookups: {Related_Contact: contact}",
                )
            )
            ok = False
        if ok and action is Action.UNLINK and (sets or not compiled):
            self.findings.append(
                entry.at("action").finding(
                    FindingKind.INVALID_STEP,
                    "action unlink clears lookups: list them with null, "
                    "e.g. lookups: {Related_Contact: null}",
                )
            )
            ok = False
        return tuple(compiled) if ok else None

    def _check_lookup_target(
        self,
        located: Located,
        definition: FieldDefinition,
        step_id: str,
        earlier_steps: dict[str, str],
        all_steps: list[dict[str, Any]],
    ) -> bool:
        all_ids = [step.get("id") for step in all_steps if isinstance(step, dict)]
        if step_id not in earlier_steps:
            if step_id in all_ids:
                self.findings.append(
                    located.finding(
                        FindingKind.FORWARD_REFERENCE,
                        f'step "{step_id}" runs at or after this step, so its record id is not '
                        "known yet; move it before this step",
                    )
                )
            else:
                hint = did_you_mean(step_id, [str(i) for i in all_ids if i])
                self.findings.append(
                    located.finding(
                        FindingKind.UNKNOWN_STEP,
                        f'no step "{step_id}" in this action plan{hint}',
                    )
                )
            return False
        target_module = earlier_steps[step_id]
        if definition.lookup_module and target_module != definition.lookup_module:
            self.findings.append(
                located.finding(
                    FindingKind.MODULE_MISMATCH,
                    f"{definition.name} looks up {definition.lookup_module}, but step "
                    f'"{step_id}" is a {target_module} record',
                )
            )
            return False
        return True

    def _step_when_absent(self, entry: Located, action: Action) -> WhenAbsent | None:
        declared = entry.data.get("when_absent")
        if declared is None:
            return DEFAULT_WHEN_ABSENT[action]
        when_absent = WhenAbsent(declared)
        if action is Action.FIND_OR_CREATE and when_absent is not WhenAbsent.CREATE:
            self.findings.append(
                entry.at("when_absent").finding(
                    FindingKind.INVALID_STEP,
                    f"find_or_create always creates a missing record; use action update with "
                    f"when_absent: {when_absent} instead",
                )
            )
            return None
        if action is Action.CREATE and when_absent is not WhenAbsent.CREATE:
            self.findings.append(
                entry.at("when_absent").finding(
                    FindingKind.INVALID_STEP,
                    "action create never looks a record up; remove when_absent",
                )
            )
            return None
        return when_absent

    # Ignore list

    def _compile_ignored(
        self, documents: list[SourceDocument], plans: dict[str, CompiledActionPlan]
    ) -> list[str]:
        ignored: list[str] = []
        for document in documents:
            data = document.data if isinstance(document.data, dict) else {}
            for index, event_type in enumerate(data.get("ignore") or []):
                located = Located(document, ("ignore", index), event_type)
                if event_type in plans or event_type in self._all_plan_names:
                    self.findings.append(
                        located.finding(
                            FindingKind.PLANNED_AND_IGNORED,
                            f"{event_type} has an action plan and is ignored too; remove one",
                        )
                    )
                ignored.append(event_type)
        return ignored

    # Shared lookups of names, paths and expressions

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
        self._all_strategy_names = names["modules"]
        self._all_mapping_names = names["field_mappings"]
        self._all_plan_names = names["action_plans"]

    def _module(
        self, name: str, entry: Located, *, key: bool = False, report: bool = True
    ) -> ModuleDefinition | None:
        if name in self.modules:
            return self.modules[name]
        if report:
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
        _, path = parse_path(str(entry.data))
        check = self.event_paths.check(path)
        if not check.known:
            self.findings.append(self._unknown_path_finding(entry, path, check, ""))
            return None
        return path

    def _value_source(
        self,
        entry: Located,
        input_path: EventPath,
        what: str,
        *,
        allow_constant: bool = True,
    ) -> ValueSource | None:
        keys = ("source", "expression", "value") if allow_constant else ("source", "expression")
        given = [key for key in keys if key in entry.data]
        if len(given) != 1:
            self.findings.append(
                entry.finding(
                    FindingKind.SCHEMA,
                    f"{what} needs exactly one of {', '.join(keys)}; "
                    + (f"found {', '.join(given)}" if given else "found none"),
                    key=True,
                )
            )
            return None

        if given[0] == "value":
            return ValueSource(constant=entry.data["value"])
        if given[0] == "expression":
            expression = self._expression(entry.at("expression"), input_path)
            return ValueSource(expression=expression) if expression is not None else None

        absolute, path = parse_path(str(entry.data["source"]))
        full_path = path if absolute else (*input_path, *path)
        check = self.event_paths.check(full_path)
        if not check.known:
            self.findings.append(
                self._unknown_path_finding(entry.at("source"), full_path, check, "")
            )
            return None
        return ValueSource(path=path, absolute=absolute)

    def _expression(self, entry: Located, input_path: EventPath) -> Any:
        if entry.data is None:
            return None
        text = str(entry.data)
        try:
            expression = compile_expression(text)
            chains = referenced_paths(text)
        except TemplateSyntaxError as error:
            self.findings.append(
                entry.finding(
                    FindingKind.EXPRESSION_SYNTAX,
                    f"the Jinja2 expression does not compile: {error.message}",
                )
            )
            return None

        ok = True
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
        self, entry: Located, full_path: EventPath, check: Any, context: str
    ) -> Finding:
        segment = str(full_path[check.failed_at])
        hint = did_you_mean(segment, check.siblings)
        known_part = format_path(full_path[: check.failed_at])
        return entry.finding(
            FindingKind.UNKNOWN_SOURCE_PATH,
            f"{format_path(full_path)}{context} is not in the event schema: {known_part} has no "
            f'"{segment}"{hint}; fix the path, or declare the field in nsps-event.schema.json',
        )
