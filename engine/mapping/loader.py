"""Loading and checking a mappings directory and the schema files it is checked against.

`load_mappings` is what the planner (and so the server at start) uses; `lint_paths` is what
`zoho-connector validate` uses. Both run the same checks and report the same findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.events.validator import DEFAULT_SCHEMAS_DIR, SCHEMA_FILE_NAME
from engine.mapping.compiler import MappingCompiler
from engine.mapping.documents import SourceDocument, load_json, load_yaml
from engine.mapping.findings import Finding, FindingKind, MappingInvalidError, sort_findings
from engine.mapping.model import CompiledMappings
from engine.mapping.modules import MODULES_FILE_NAME, read_module_definitions

DEFAULT_MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"
LANGUAGE_SCHEMA_FILE_NAME = "mapping-language.schema.json"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedMappings:
    """Compiled mappings together with the event schema they were checked against."""

    mappings: CompiledMappings
    event_schema: dict[str, Any]


def load_mappings(
    mappings_dir: Path | None = None, schemas_dir: Path | None = None
) -> LoadedMappings:
    """Load, check and compile one mappings directory; raises MappingInvalidError."""
    mappings_dir = mappings_dir or DEFAULT_MAPPINGS_DIR
    schemas_dir = schemas_dir or DEFAULT_SCHEMAS_DIR

    findings: list[Finding] = []
    schemas = _load_schemas(schemas_dir, findings)
    compiled = None
    if schemas is not None:
        compiled = _compile_directory(mappings_dir, *schemas, findings)

    if findings or compiled is None or schemas is None:
        raise MappingInvalidError(sort_findings(findings))
    return LoadedMappings(compiled, schemas[1])


def lint_paths(paths: Sequence[Path]) -> list[Finding]:
    """Check mapping directories and schema files; return every finding, sorted by place.

    A directory is checked as a whole: its JSON files as JSON Schemas, and its YAML files as
    one set of mappings with its `crm-modules.yaml`. A YAML file stands for its directory,
    because a field mapping and the plan that uses it may sit in different files. The event
    and language schemas come from a given schemas directory, else from the shipped one.
    Raises FileNotFoundError for a path that does not exist.
    """
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(path)

    findings: list[Finding] = []
    json_files = [p for p in _expand(paths) if p.suffix == ".json"]
    for json_file in json_files:
        _check_json_schema_file(json_file, findings)

    schemas_dir = next(
        (p.parent for p in json_files if p.name == SCHEMA_FILE_NAME), DEFAULT_SCHEMAS_DIR
    )
    mapping_dirs = _mapping_directories(paths)
    if mapping_dirs:
        schemas = _load_schemas(schemas_dir, [] if json_files else findings)
        for mapping_dir in mapping_dirs:
            if schemas is not None:
                _compile_directory(mapping_dir, *schemas, findings)
    return sort_findings(set(findings))


def _display(path: Path) -> str:
    """Return the path relative to the working directory when it is inside it, as CI expects."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _expand(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    return files


def _mapping_directories(paths: Sequence[Path]) -> list[Path]:
    directories: list[Path] = []
    for path in paths:
        if path.is_dir():
            has_yaml = any(p.suffix in YAML_SUFFIXES for p in path.iterdir())
            candidate = path if has_yaml else None
        else:
            candidate = path.parent if path.suffix in YAML_SUFFIXES else None
        if candidate is not None and candidate not in directories:
            directories.append(candidate)
    return directories


def _check_json_schema_file(path: Path, findings: list[Finding]) -> SourceDocument | None:
    document, syntax_findings = load_json(path, _display(path))
    findings.extend(syntax_findings)
    if document is None:
        return None
    try:
        Draft202012Validator.check_schema(document.data)
    except SchemaError as error:
        findings.append(
            document.finding(
                tuple(error.absolute_path),
                FindingKind.INVALID_JSON_SCHEMA,
                f"not a valid JSON Schema (draft 2020-12): {error.message}",
            )
        )
        return None
    except RecursionError:
        findings.append(
            document.finding(
                (),
                FindingKind.INVALID_JSON_SCHEMA,
                "the schema is nested too deeply to check; flatten it with $defs and $ref",
            )
        )
        return None
    return document


def _load_schemas(
    schemas_dir: Path, findings: list[Finding]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return (language schema, event schema), or None with findings."""
    loaded = []
    for name in (LANGUAGE_SCHEMA_FILE_NAME, SCHEMA_FILE_NAME):
        path = schemas_dir / name
        if not path.is_file():
            findings.append(
                Finding(
                    _display(path),
                    1,
                    1,
                    FindingKind.MISSING_FILE,
                    f"{name} is missing; restore it from the repository",
                )
            )
            continue
        document = _check_json_schema_file(path, findings)
        if document is not None:
            loaded.append(document.data)
    if len(loaded) != 2:
        return None
    return loaded[0], loaded[1]


def _compile_directory(
    mappings_dir: Path,
    language_schema: dict[str, Any],
    event_schema: dict[str, Any],
    findings: list[Finding],
) -> CompiledMappings | None:
    if not mappings_dir.is_dir():
        findings.append(
            Finding(
                _display(mappings_dir),
                1,
                1,
                FindingKind.MISSING_FILE,
                "the mappings directory does not exist",
            )
        )
        return None

    modules_path = mappings_dir / MODULES_FILE_NAME
    if not modules_path.is_file():
        findings.append(
            Finding(
                _display(modules_path),
                1,
                1,
                FindingKind.MISSING_FILE,
                f"{MODULES_FILE_NAME} with the Zoho module definitions is "
                "missing from the mappings directory",
            )
        )
        return None
    modules_document, modules_findings = load_yaml(modules_path, _display(modules_path))
    findings.extend(modules_findings)
    if modules_document is None:
        return None
    modules, definition_findings = read_module_definitions(modules_document)
    findings.extend(definition_findings)

    documents: list[SourceDocument] = []
    mapping_files = sorted(
        p
        for p in mappings_dir.iterdir()
        if p.suffix in YAML_SUFFIXES and p.name != MODULES_FILE_NAME and p.is_file()
    )
    if not mapping_files:
        findings.append(
            Finding(
                _display(mappings_dir),
                1,
                1,
                FindingKind.MISSING_FILE,
                "the mappings directory has no mapping files (*.yaml)",
            )
        )
    unreadable = False
    for path in mapping_files:
        document, load_findings = load_yaml(path, _display(path))
        findings.extend(load_findings)
        if document is None:
            unreadable = True
        else:
            documents.append(document)

    compiler = MappingCompiler(language_schema, modules, event_schema)
    compiler.incomplete = unreadable
    compiled = compiler.compile(documents)
    findings.extend(compiler.findings)
    return compiled


__all__ = ["DEFAULT_MAPPINGS_DIR", "LoadedMappings", "lint_paths", "load_mappings"]
