"""Zoho module definitions: the modules and fields of `crm-modules.yaml`.

The emulator reads the same file. Here it gives the linter the field names and types that field
mappings are checked against, and the planner the text lengths and picklist values.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine.mapping.documents import SourceDocument
from engine.mapping.findings import Finding, FindingKind
from engine.mapping.types import ZOHO_FIELD_TYPES

MODULES_FILE_NAME = "crm-modules.yaml"


@dataclass(frozen=True)
class FieldDefinition:
    """One Zoho field: its data type and limits."""

    name: str
    type: str
    length: int | None = None
    mandatory: bool = False
    unique: bool = False
    values: tuple[str, ...] = ()
    """Picklist display values."""
    lookup_module: str | None = None


@dataclass(frozen=True)
class ModuleDefinition:
    name: str
    fields: MappingProxyType[str, FieldDefinition]


def read_module_definitions(
    document: SourceDocument,
) -> tuple[dict[str, ModuleDefinition], list[Finding]]:
    """Read the module definitions; problems become findings, and bad fields are left out."""
    findings: list[Finding] = []
    data = document.data
    modules_data = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(modules_data, dict):
        message = "the module definitions need a top-level `modules:` mapping of module names"
        return {}, [document.finding(("modules",), FindingKind.SCHEMA, message, key=True)]

    modules: dict[str, ModuleDefinition] = {}
    for module_name, module_data in modules_data.items():
        path = ("modules", module_name)
        fields_data = module_data.get("fields") if isinstance(module_data, dict) else None
        if not isinstance(fields_data, dict):
            findings.append(
                document.finding(
                    path,
                    FindingKind.SCHEMA,
                    f"module {module_name} needs a `fields:` mapping",
                    key=True,
                )
            )
            continue
        fields = {}
        for field_name, field_data in fields_data.items():
            definition = _read_field(document, (*path, "fields", field_name), field_data, findings)
            if definition is not None:
                fields[str(field_name)] = definition
        modules[str(module_name)] = ModuleDefinition(str(module_name), MappingProxyType(fields))
    return modules, findings


def _read_field(
    document: SourceDocument, path: tuple[Any, ...], data: Any, findings: list[Finding]
) -> FieldDefinition | None:
    name = str(path[-1])
    field_type = data.get("type") if isinstance(data, dict) else None
    if field_type not in ZOHO_FIELD_TYPES and field_type != "lookup":
        known = ", ".join(sorted((*ZOHO_FIELD_TYPES, "lookup")))
        findings.append(
            document.finding(
                path,
                FindingKind.SCHEMA,
                f"field {name} needs a `type:` that is one of: {known}",
                key=True,
            )
        )
        return None

    length = data.get("length")
    values = data.get("values") or ()
    return FieldDefinition(
        name=name,
        type=str(field_type),
        length=length if isinstance(length, int) else None,
        mandatory=bool(data.get("mandatory", False)),
        unique=bool(data.get("unique", False)),
        values=tuple(str(value) for value in values) if isinstance(values, list) else (),
        lookup_module=str(data["module"]) if data.get("module") else None,
    )
