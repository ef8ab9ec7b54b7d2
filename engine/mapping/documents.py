"""Loading YAML and JSON files with the line and column of every node.

YAML is read with PyYAML's safe loader only: the node tree from `compose` is turned into plain
Python values, and the position of every key and value is kept in a table indexed by the path
to it. Findings about any part of a document can so name the exact line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.mapping.findings import Finding, FindingKind

DocumentPath = tuple[str | int, ...]
Position = tuple[int, int]


@dataclass
class SourceDocument:
    """The plain value of one file plus the 1-based position of each node in it."""

    file: str
    data: Any
    value_positions: dict[DocumentPath, Position] = field(default_factory=dict)
    key_positions: dict[DocumentPath, Position] = field(default_factory=dict)

    def position(self, path: DocumentPath, *, key: bool = False) -> Position:
        """Return the position of the node at `path`, or of its nearest ancestor that exists.

        With `key=True` the position of the mapping key is preferred, which is where an unknown
        or misspelled key should be pointed at.
        """
        current = tuple(path)
        while True:
            if key and current in self.key_positions:
                return self.key_positions[current]
            if current in self.value_positions:
                return self.value_positions[current]
            if not current:
                return (1, 1)
            current = current[:-1]

    def finding(
        self, path: DocumentPath, kind: FindingKind, message: str, *, key: bool = False
    ) -> Finding:
        line, column = self.position(path, key=key)
        return Finding(self.file, line, column, kind, message)


def load_yaml(path: Path, display_name: str) -> tuple[SourceDocument | None, list[Finding]]:
    """Load one YAML file safely; return the document, or None and the syntax finding."""
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = SourceDocument(display_name, None)
        findings: list[Finding] = []
        if node is not None:
            document.data = _to_value(loader, node, (), document, findings)
        return document, findings
    except yaml.MarkedYAMLError as error:
        return None, [_syntax_finding(display_name, error)]
    except yaml.YAMLError as error:
        return None, [Finding(display_name, 1, 1, FindingKind.YAML_SYNTAX, str(error))]
    finally:
        loader.dispose()


def load_json(path: Path, display_name: str) -> tuple[SourceDocument | None, list[Finding]]:
    """Load one JSON file; positions come from reading the same text as YAML when it can be.

    JSON is a subset of YAML 1.2, and PyYAML reads ordinary JSON files the same way. When it
    cannot, findings about that file point at line 1.
    """
    import json

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"invalid JSON: {error.msg}; fix the syntax at this position"
        return None, [
            Finding(display_name, error.lineno, error.colno, FindingKind.JSON_SYNTAX, message)
        ]

    document = SourceDocument(display_name, data)
    positioned, _ = load_yaml(path, display_name)
    if positioned is not None and positioned.data == data:
        document.value_positions = positioned.value_positions
        document.key_positions = positioned.key_positions
    return document, []


def _syntax_finding(file: str, error: yaml.MarkedYAMLError) -> Finding:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = error.problem or "invalid YAML"
    context = f" {error.context}" if error.context else ""
    message = f"invalid YAML: {problem}{context}; check indentation, quotes and colons here"
    return Finding(file, line, column, FindingKind.YAML_SYNTAX, message)


def _to_value(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: DocumentPath,
    document: SourceDocument,
    findings: list[Finding],
) -> Any:
    document.value_positions[path] = _mark(node)

    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _key(loader, key_node)
            child = (*path, key)
            if key in result:
                line, column = _mark(key_node)
                findings.append(
                    Finding(
                        document.file,
                        line,
                        column,
                        FindingKind.DUPLICATE_KEY,
                        f'key "{key}" appears twice in this mapping; remove one of them',
                    )
                )
            document.key_positions[child] = _mark(key_node)
            result[key] = _to_value(loader, value_node, child, document, findings)
        return result

    if isinstance(node, yaml.SequenceNode):
        return [
            _to_value(loader, item, (*path, index), document, findings)
            for index, item in enumerate(node.value)
        ]

    return loader.construct_object(node, deep=True)


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    """Return a mapping key as the text written in the file.

    Every key of the mapping language is a name, so `on`, `yes` or `N` (booleans in YAML 1.1)
    and `404` stay the strings they look like; a value map such as `{Y: true}` then matches the
    event value "Y".
    """
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return str(loader.construct_object(node, deep=True))


def _mark(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)
