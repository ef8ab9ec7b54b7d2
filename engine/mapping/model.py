"""Compiled mappings: the immutable objects the planner runs.

The compiler builds these from the mapping files once, after every check has passed. Nothing in
here refers back to YAML; paths are already parsed and expressions already compiled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from engine.mapping.expressions import Expression
from engine.mapping.modules import FieldDefinition, ModuleDefinition
from engine.planning.plan import Action, EventPath, Strategy, WhenAbsent


class WhenEmpty(StrEnum):
    """Behaviour of a field mapping when its value is absent, null or ""."""

    SKIP = "skip"
    CLEAR = "clear"
    FAIL = "fail"


class WhenInputAbsent(StrEnum):
    """Behaviour of a step when the input it binds is absent or null."""

    SKIP = "skip"
    FAIL = "fail"


class TooLong(StrEnum):
    """Behaviour of a field mapping for text longer than the field allows."""

    ERROR = "error"
    TRUNCATE = "truncate"


@dataclass(frozen=True)
class ValueSource:
    """Origin of a value: exactly one of a path, an expression or a constant."""

    path: EventPath | None = None
    absolute: bool = False
    expression: Expression | None = None
    constant: Any = None

    def describe(self) -> str:
        if self.expression is not None:
            return f"expression {self.expression.text!r}"
        if self.path is not None:
            prefix = "$." if self.absolute else ""
            return prefix + ".".join(str(s) for s in self.path)
        return f"constant {self.constant!r}"


@dataclass(frozen=True)
class CompiledField:
    """One field of a field mapping, ready to produce a `FieldValue`."""

    field: FieldDefinition
    source: ValueSource
    type: str
    value_map: MappingProxyType[str, Any] | None = None
    default: Any = None
    default_on_create: ValueSource | None = None
    condition: Expression | None = None
    when_empty: WhenEmpty = WhenEmpty.SKIP
    max_length: int | None = None
    on_too_long: TooLong = TooLong.ERROR


@dataclass(frozen=True)
class CompiledFieldMapping:
    """A field mapping with its compiled fields.

    `complete` is False when fields with findings were left out. The compiler still checks the
    steps that write such a mapping, but never returns it.
    """

    name: str
    module: str
    input: EventPath
    fields: tuple[CompiledField, ...]
    complete: bool = True


@dataclass(frozen=True)
class ModuleStrategy:
    """Lookup method for the records of one module."""

    module: ModuleDefinition
    strategy: Strategy
    key_field: FieldDefinition
    duplicate_check_fields: tuple[str, ...]


@dataclass(frozen=True)
class CompiledLookup:
    field: str
    step_id: str | None


@dataclass(frozen=True)
class CompiledStep:
    id: str
    action: Action
    module: ModuleStrategy
    input: EventPath
    match_field: FieldDefinition | None
    match_source: ValueSource | None
    mapping: CompiledFieldMapping | None
    lookups: tuple[CompiledLookup, ...]
    when_absent: WhenAbsent
    when_input_absent: WhenInputAbsent
    condition: Expression | None


@dataclass(frozen=True)
class CompiledActionPlan:
    event_type: str
    steps: tuple[CompiledStep, ...]


@dataclass(frozen=True)
class CompiledMappings:
    """Everything the planner needs, compiled from one mappings directory."""

    action_plans: MappingProxyType[str, CompiledActionPlan]
    ignored: frozenset[str]
    modules: MappingProxyType[str, ModuleStrategy]
