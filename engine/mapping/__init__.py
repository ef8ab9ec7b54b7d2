"""The mapping language: loading, checking and compiling the YAML files of `mappings/`."""

from engine.mapping.findings import Finding, FindingKind, MappingInvalidError
from engine.mapping.loader import DEFAULT_MAPPINGS_DIR, LoadedMappings, lint_paths, load_mappings
from engine.mapping.model import CompiledMappings

__all__ = [
    "DEFAULT_MAPPINGS_DIR",
    "CompiledMappings",
    "Finding",
    "FindingKind",
    "LoadedMappings",
    "MappingInvalidError",
    "lint_paths",
    "load_mappings",
]
