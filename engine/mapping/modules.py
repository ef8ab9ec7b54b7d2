"""Zoho module definitions: the modules and fields of `crm-modules.yaml`.

This is the only reader of that file. It gives the linter the field names and types that field
mappings are checked against, the planner the text lengths and picklist values, and the
emulator the modules it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.mapping.documents import SourceDocument, load_yaml
from engine.mapping.findings import Finding, FindingKind, MappingInvalidError, sort_findings
from engine.mapping.types import ZOHO_FIELD_TYPES

MODULES_FILE_NAME = "crm-modules.yaml"

# Lengths of Zoho's field types when a definition gives none. Single-line text (255), a large
# text area (32,000) and phone (30) are Zoho's documented limits.
# NOTE: the email (100) and website (255) lengths are unconfirmed estimates.
DEFAULT_LENGTHS = {"text": 255, "textarea": 32000, "email": 100, "phone": 30, "website": 255}


@dataclass(frozen=True)
class FieldDefinition:
    """One Zoho field: its data type and limits."""

    name: str
    type: str
    length: int | None = None
    """Maximum text length; set for every text-like type that has a Zoho default."""

    mandatory: bool = False
    unique: bool = False
    values: tuple[str, ...] = ()
    """Picklist display values."""
    lookup_module: str | None = None


@dataclass(frozen=True)
class ModuleDefinition:
    name: str
    fields: MappingProxyType[str, FieldDefinition]

    @property
    def unique_fields(self) -> list[FieldDefinition]:
        return [field for field in self.fields.values() if field.unique]

    @property
    def mandatory_fields(self) -> list[FieldDefinition]:
        return [field for field in self.fields.values() if field.mandatory]


def load_module_definitions(path: Path) -> dict[str, ModuleDefinition]:
    """Read a module definitions file on its own, as the emulator does.

    Raises OSError when the file cannot be read and MappingInvalidError with every finding when
    it has problems.
    """
    document, findings = load_yaml(path, str(path))
    modules: dict[str, ModuleDefinition] = {}
    if document is not None:
        modules, definition_findings = read_module_definitions(document)
        findings.extend(definition_findings)
    if findings:
        raise MappingInvalidError(sort_findings(findings))
    return modules


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

    length = data.get("length", DEFAULT_LENGTHS.get(str(field_type)))
    if length is not None and (
        not isinstance(length, int) or isinstance(length, bool) or length < 1
    ):
        findings.append(
            document.finding(
                (*path, "length"),
                FindingKind.SCHEMA,
                f"field {name} needs a `length:` that is a whole number of at least 1",
            )
        )
        return None
    lookup_module = data.get("module")
    if field_type == "lookup" and not lookup_module:
        findings.append(
            document.finding(
                path,
                FindingKind.SCHEMA,
                f"lookup field {name} needs a `module:` naming the module it points to",
                key=True,
            )
        )
        return None

    values = data.get("values") or ()
    return FieldDefinition(
        name=name,
        type=str(field_type),
        length=length,
        mandatory=bool(data.get("mandatory", False)),
        unique=bool(data.get("unique", False)),
        values=tuple(str(value) for value in values) if isinstance(values, list) else (),
        lookup_module=str(lookup_module) if lookup_module else None,
    )
