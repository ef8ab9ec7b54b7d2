"""The mapping language schema and the documentation that describes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.mapping import FindingKind

REPOSITORY = Path(__file__).parents[2]
LANGUAGE_SCHEMA = REPOSITORY / "schemas" / "mapping-language.schema.json"
DOCS = REPOSITORY / "docs" / "mapping-language.md"
MODELINE = "# yaml-language-server: $schema=../schemas/mapping-language.schema.json\n"


def properties(schema: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every property schema of the language, with a readable path to it."""
    if not isinstance(schema, dict):
        return
    for name, child in (schema.get("properties") or {}).items():
        yield f"{path}.{name}", child
        yield from properties(child, f"{path}.{name}")
    for keyword in ("additionalProperties", "items"):
        if isinstance(schema.get(keyword), dict):
            yield from properties(schema[keyword], f"{path}[{keyword}]")


PROPERTIES = list(properties(json.loads(LANGUAGE_SCHEMA.read_text(encoding="utf-8"))))


def test_language_schema_has_properties() -> None:
    assert len(PROPERTIES) > 40


@pytest.mark.parametrize(("path", "schema"), PROPERTIES, ids=[path for path, _ in PROPERTIES])
def test_property_has_description_and_example(path: str, schema: dict[str, Any]) -> None:
    assert schema.get("description"), f"{path} has no description"
    assert schema.get("examples"), f"{path} has no examples"


@pytest.mark.parametrize("kind", list(FindingKind), ids=[str(kind) for kind in FindingKind])
def test_finding_kind_is_documented(kind: FindingKind) -> None:
    assert f"| `{kind}` |" in DOCS.read_text(encoding="utf-8")


MAPPING_FILES = sorted(
    path for path in (REPOSITORY / "mappings").glob("*.yaml") if path.name != "crm-modules.yaml"
)


@pytest.mark.parametrize("path", MAPPING_FILES, ids=[path.name for path in MAPPING_FILES])
def test_mapping_file_starts_with_modeline(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith(MODELINE)
