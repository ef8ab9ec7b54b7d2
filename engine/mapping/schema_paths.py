"""Checking paths of the mapping files against the NSPS event JSON Schema.

A path is known when every segment is a declared property (or a list index into a declared
array). Below an object whose schema declares no properties at all (such as
`pb_data.access_policy_info`), any path is accepted, because the schema declares nothing there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.planning.plan import EventPath

COMBINATORS = ("allOf", "anyOf", "oneOf")
# Keywords of a schema that only combines or references others, so it is not open-ended itself.
WRAPPERS = (*COMBINATORS, "if", "then", "else", "$ref")


@dataclass(frozen=True)
class PathCheck:
    """The result of looking a path up in the event schema."""

    known: bool
    failed_at: int = -1
    """Index of the first unknown segment."""
    siblings: tuple[str, ...] = ()
    """Property names declared where the path failed, for a "did you mean" hint."""
    json_types: frozenset[str] = field(default_factory=frozenset)
    """JSON types the schema allows at the end of a known path; empty when it declares no type."""


class EventSchemaPaths:
    """Looks paths up in one event schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def check(self, path: EventPath) -> PathCheck:
        schemas = [self.schema]
        for index, segment in enumerate(path):
            next_schemas: list[dict[str, Any]] = []
            declared: set[str] = set()
            open_ended = False
            for schema in self._expand(schemas):
                properties = schema.get("properties")
                if isinstance(segment, int) or (isinstance(segment, str) and segment.isdigit()):
                    items = schema.get("items")
                    if isinstance(items, dict):
                        next_schemas.append(items)
                    continue
                if isinstance(properties, dict):
                    declared.update(properties)
                    if segment in properties:
                        next_schemas.append(properties[segment])
                elif _may_be_object(schema):
                    open_ended = True
            if not next_schemas and open_ended and not declared:
                return PathCheck(known=True)
            if not next_schemas:
                return PathCheck(known=False, failed_at=index, siblings=tuple(sorted(declared)))
            schemas = next_schemas
        return PathCheck(known=True, json_types=self._types(schemas))

    def _expand(self, schemas: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Yield each schema with its `$ref` resolved and its combinator branches, recursively."""
        pending = list(schemas)
        seen: set[int] = set()
        while pending:
            schema = pending.pop()
            if not isinstance(schema, dict) or id(schema) in seen:
                continue
            seen.add(id(schema))
            reference = schema.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/"):
                pending.append(self._resolve(reference))
            for keyword in COMBINATORS:
                pending.extend(schema.get(keyword) or [])
            for keyword in ("then", "else"):
                if isinstance(schema.get(keyword), dict):
                    pending.append(schema[keyword])
            yield schema

    def _resolve(self, reference: str) -> dict[str, Any]:
        target: Any = self.schema
        for part in reference[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}

    def _types(self, schemas: list[dict[str, Any]]) -> frozenset[str]:
        found: set[str] = set()
        for schema in self._expand(schemas):
            declared = schema.get("type")
            if isinstance(declared, str):
                found.add(declared)
            elif isinstance(declared, list):
                found.update(str(name) for name in declared)
        return frozenset(found - {"null"})


def _may_be_object(schema: dict[str, Any]) -> bool:
    """Return whether the schema allows an object without declaring its properties."""
    if "properties" in schema or any(key in schema for key in WRAPPERS):
        return False
    declared = schema.get("type")
    if declared is None:
        return True
    types = {declared} if isinstance(declared, str) else set(declared)
    return "object" in types
