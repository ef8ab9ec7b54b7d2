"""Compiling action plans: steps, their module, input, match, lookups and conditions."""

from __future__ import annotations

from typing import Any

from engine.events.paths import format_path
from engine.mapping.context import CompilerBase, Located
from engine.mapping.expressions import referenced_paths
from engine.mapping.field_mappings import FieldEntries
from engine.mapping.findings import FindingKind, did_you_mean, known_list
from engine.mapping.model import (
    CompiledActionPlan,
    CompiledFieldMapping,
    CompiledLookup,
    CompiledStep,
    ModuleStrategy,
    ValueSource,
    WhenInputAbsent,
)
from engine.mapping.modules import FieldDefinition
from engine.planning.plan import Action, EventPath, Strategy, WhenAbsent

DEFAULT_WHEN_ABSENT = {
    Action.FIND: WhenAbsent.FAIL,
    Action.CREATE: WhenAbsent.CREATE,
    Action.UPDATE: WhenAbsent.SKIP,
    Action.FIND_OR_CREATE: WhenAbsent.CREATE,
    Action.LINK: WhenAbsent.CREATE,
    Action.UNLINK: WhenAbsent.CREATE,
}


class ActionPlanCompiler(CompilerBase):
    """Compiles the `action_plans:` section."""

    def _compile_action_plans(
        self,
        entries: dict[str, Located],
        strategies: dict[str, ModuleStrategy],
        mappings: dict[str, tuple[CompiledFieldMapping, FieldEntries]],
    ) -> dict[str, CompiledActionPlan]:
        plans = {}
        for event_type, entry in entries.items():
            steps = []
            # step id -> module of each earlier step; None for a step with findings of its own
            step_modules: dict[str, str | None] = {}
            seen: dict[str, Located] = {}
            ok = True
            for index, step_data in enumerate(entry.data["steps"]):
                located = entry.at("steps", index)
                if self._has_schema_findings(located):
                    # Its schema findings are reported already; a lookup of its id is not
                    # reported again as an unknown step.
                    step_id = step_data.get("id") if isinstance(step_data, dict) else None
                    if isinstance(step_id, str) and step_id not in seen:
                        seen[step_id] = located
                        step_modules[step_id] = None
                    ok = False
                    continue
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
                    step_modules[step_id] = None
                    ok = False
                    continue
                steps.append(step)
                step_modules[step.id] = step.module.module.name
                if step.mapping is not None and not step.mapping.complete:
                    ok = False
            if ok:
                plans[event_type] = CompiledActionPlan(event_type, tuple(steps))
        return plans

    def _compile_step(
        self,
        entry: Located,
        strategies: dict[str, ModuleStrategy],
        mappings: dict[str, tuple[CompiledFieldMapping, FieldEntries]],
        earlier_steps: dict[str, str | None],
        all_steps: list[dict[str, Any]],
    ) -> CompiledStep | None:
        """Compile one step, checking every part even when an earlier part has findings.

        A step that writes an incomplete field mapping is still returned. Later steps then check
        their lookups against its module, and the caller drops its plan.
        """
        data = entry.data
        action = Action(data["action"])
        count = len(self.findings)

        mapping, field_entries = self._step_mapping(entry, mappings)
        strategy = None
        if mapping is not None or "write" not in data or "module" in data:
            strategy = self._step_module(entry, mapping, strategies)
        input_path = self._step_input(entry, mapping)
        when_absent = self._step_when_absent(entry, action)

        condition = None
        if input_path is not None:
            condition = self._expression(entry.at("condition"), input_path)
            if mapping is not None and field_entries is not None and input_path != mapping.input:
                self._check_rebound_sources(mapping, field_entries, input_path, entry)

        match_field, match_source, lookups = None, None, None
        if strategy is not None and input_path is not None:
            match_field, match_source = self._step_match(entry, action, strategy, input_path)
        if strategy is not None:
            lookups = self._step_lookups(entry, action, strategy, earlier_steps, all_steps)

        if len(self.findings) > count:
            return None
        if strategy is None or input_path is None or lookups is None or when_absent is None:
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
        self, entry: Located, mappings: dict[str, tuple[CompiledFieldMapping, FieldEntries]]
    ) -> tuple[CompiledFieldMapping | None, FieldEntries | None]:
        name = entry.data.get("write")
        if name is None:
            return None, None
        if name in mappings:
            return mappings[name]
        if self.is_defined_elsewhere("field_mappings", name):
            return None, None
        hint = did_you_mean(name, self.defined_names("field_mappings"))
        self.findings.append(
            entry.at("write").finding(
                FindingKind.UNKNOWN_MAPPING,
                f'field mapping "{name}" is not defined{hint}; define it under field_mappings '
                f"(defined: {known_list(self.defined_names('field_mappings'))})",
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
        module_entry = entry.at("module") if "module" in entry.data else entry.at("write")
        if self._module(name, module_entry) is None:
            return None
        if name not in strategies:
            if not self.is_defined_elsewhere("modules", name):
                self.findings.append(
                    module_entry.finding(
                        FindingKind.UNKNOWN_MODULE,
                        f"module {name} has no strategy; add it under `modules:` with strategy, "
                        "key_field and duplicate_check_fields",
                    )
                )
            return None
        return strategies[name]

    def _step_input(self, entry: Located, mapping: CompiledFieldMapping | None) -> EventPath | None:
        """Return the step's input path; None when it is invalid or comes from a field mapping
        that did not compile (whose findings are reported already)."""
        if "input" in entry.data:
            return self._input_path(entry.at("input"))
        if mapping is not None:
            return mapping.input
        return None if "write" in entry.data else ()

    def _check_rebound_sources(
        self,
        mapping: CompiledFieldMapping,
        field_entries: FieldEntries,
        input_path: EventPath,
        step_entry: Located,
    ) -> None:
        """Check the mapping's relative paths again against the input this step binds."""
        line, _ = step_entry.document.position(step_entry.path)
        context = (
            f" when step {step_entry.data['id']} (line {line}) binds input "
            f"{format_path(input_path)}"
        )
        for compiled, field_entry in zip(mapping.fields, field_entries, strict=True):
            sources = (
                (compiled.source, field_entry),
                (compiled.default_on_create, field_entry.at("default_on_create")),
            )
            for source, located in sources:
                for relative, key in _relative_paths(source):
                    full_path = (*input_path, *relative)
                    check = self.event_paths.check(full_path)
                    if not check.known:
                        self.findings.append(
                            self._unknown_path_finding(located.at(key), full_path, check, context)
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
        earlier_steps: dict[str, str | None],
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
        earlier_steps: dict[str, str | None],
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
        if target_module is None:
            return False
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


def _relative_paths(source: ValueSource | None) -> list[tuple[EventPath, str]]:
    """Return the paths a value source reads relative to its input, with the key holding them."""
    if source is None:
        return []
    if source.expression is not None:
        chains = referenced_paths(source.expression.text)
        return [(path, "expression") for name, path in chains if name == "input"]
    if source.path is not None and not source.absolute:
        return [(source.path, "source")]
    return []
