"""Loading YAML and JSON files with the line and column of every node.

YAML is read with PyYAML's safe loader only: the node tree from `compose` is turned into plain
Python values, and the position of every key and value is kept in a table indexed by the path
to it. Findings about any part of a document can so name the exact line and column.

Aliases are expanded while converting, so a small file can describe a huge tree ("billion
laughs"). The conversion therefore stops with a finding after `MAX_NODES` nodes or
`MAX_DEPTH` levels, and on an alias that contains itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.mapping.findings import Finding, FindingKind

DocumentPath = tuple[str | int, ...]
Position = tuple[int, int]

MAX_NODES = 100_000
"""Maximum number of nodes in one document after expanding aliases and merge keys."""
MAX_DEPTH = 64
"""Maximum nesting of mappings and sequences in one document."""
MAX_QUOTED_LENGTH = 80
"""Maximum number of characters of a document value quoted in a finding."""

_MAPPING_TAG = "tag:yaml.org,2002:map"
_SEQUENCE_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Scalar tags the safe loader resolves on plain values by itself. Any other tag, written as
# `!!binary` or `!custom`, is reported instead of being constructed.
_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")
)


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
        return Finding(self.file, line, column, kind, self._shorten_quoted(path, message))

    def _shorten_quoted(self, path: DocumentPath, message: str) -> str:
        """Cut the value at `path` to `MAX_QUOTED_LENGTH` where `message` quotes it whole.

        Messages from other libraries, such as jsonschema's, quote the value with `repr`.
        """
        value: Any = self.data
        for segment in path:
            try:
                value = value[segment]
            except (KeyError, IndexError, TypeError):
                return message
        if isinstance(value, str | list | dict) and len(value) > MAX_QUOTED_LENGTH:
            quoted = repr(value)
            return message.replace(quoted, shorten(quoted))
        return message


def load_yaml(path: Path, display_name: str) -> tuple[SourceDocument | None, list[Finding]]:
    """Load one YAML file safely; return the document, or None and the finding that stopped it."""
    text, read_finding = _read_text(path, display_name, FindingKind.YAML_SYNTAX)
    if text is None:
        return None, [read_finding] if read_finding is not None else []
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = SourceDocument(display_name, None)
        findings: list[Finding] = []
        if node is not None:
            converter = _Converter(loader, document, findings)
            document.data = converter.value(node, (), 0)
        return document, findings
    except _DocumentRejected as error:
        return None, [
            Finding(display_name, error.line, error.column, FindingKind.YAML_SYNTAX, error.message)
        ]
    except RecursionError:
        # The composer of PyYAML recurses on every level, before the converter counts depth.
        message = (
            f"the document is nested too deeply; keep mappings and sequences within {MAX_DEPTH} "
            "levels"
        )
        return None, [Finding(display_name, 1, 1, FindingKind.YAML_SYNTAX, message)]
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

    text, read_finding = _read_text(path, display_name, FindingKind.JSON_SYNTAX)
    if text is None:
        return None, [read_finding] if read_finding is not None else []
    try:
        data = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        message = "invalid JSON: the document is nested too deeply for the parser"
        return None, [Finding(display_name, 1, 1, FindingKind.JSON_SYNTAX, message)]
    except json.JSONDecodeError as error:
        message = f"invalid JSON: {error.msg}; fix the syntax at this position"
        return None, [
            Finding(display_name, error.lineno, error.colno, FindingKind.JSON_SYNTAX, message)
        ]
    except ValueError as error:
        message = f"invalid JSON: {error}"
        return None, [Finding(display_name, 1, 1, FindingKind.JSON_SYNTAX, message)]

    document = SourceDocument(display_name, data)
    positioned, _ = load_yaml(path, display_name)
    if positioned is not None and positioned.data == data:
        document.value_positions = positioned.value_positions
        document.key_positions = positioned.key_positions
    return document, []


def _parse_int(digits: str) -> int:
    # Python's own error for a longer integer advises calling sys.set_int_max_str_digits(),
    # which is no help to someone editing a schema.
    count = len(digits.lstrip("-"))
    limit = sys.get_int_max_str_digits()
    if count > limit:
        raise ValueError(f"an integer has {count} digits, more than the {limit} allowed")
    return int(digits)


def _syntax_finding(file: str, error: yaml.MarkedYAMLError) -> Finding:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = error.problem or "invalid YAML"
    context = f" {error.context}" if error.context else ""
    message = f"invalid YAML: {problem}{context}; check indentation, quotes and colons here"
    return Finding(file, line, column, FindingKind.YAML_SYNTAX, message)


def _read_text(
    path: Path, display_name: str, kind: FindingKind
) -> tuple[str | None, Finding | None]:
    """Return the file's text, or None and a finding when it cannot be read as UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8"), None
    except UnicodeDecodeError as error:
        message = (
            f"the file is not UTF-8 text (invalid byte at offset {error.start}); save it as UTF-8"
        )
        return None, Finding(display_name, 1, 1, kind, message)
    except OSError as error:
        message = f"the file cannot be read: {error.strerror or type(error).__name__}"
        return None, Finding(display_name, 1, 1, kind, message)


def shorten(text: str) -> str:
    """Cut `text` to `MAX_QUOTED_LENGTH` characters for a message, saying how long it was."""
    if len(text) <= MAX_QUOTED_LENGTH:
        return text
    return f"{text[:MAX_QUOTED_LENGTH]}... ({len(text)} characters)"


def quote_value(value: Any) -> str:
    """Return `repr(value)` shortened for a message."""
    return shorten(repr(value))


class _DocumentRejected(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line, self.column = _mark(node)
        self.message = message


class _Converter:
    """Turns a composed node tree into plain values, counting nodes against `MAX_NODES`."""

    def __init__(
        self, loader: yaml.SafeLoader, document: SourceDocument, findings: list[Finding]
    ) -> None:
        self.loader = loader
        self.document = document
        self.findings = findings
        self.nodes_left = MAX_NODES
        self.open_nodes: set[int] = set()
        self.merged_pairs: dict[int, int] = {}
        """Node id -> number of leading pairs that `flatten_mapping` merged into the node."""

    def value(self, node: yaml.Node, path: DocumentPath, depth: int) -> Any:
        self._count(node)
        if depth > MAX_DEPTH:
            raise _DocumentRejected(
                node,
                f"the document is nested more than {MAX_DEPTH} levels deep; flatten it",
            )
        self.document.value_positions[path] = _mark(node)

        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                self._tag_finding(node)
                return node.value
            return self.loader.construct_object(node, deep=True)

        if id(node) in self.open_nodes:
            # An anchored node that contains an alias of itself is an infinite tree.
            raise _DocumentRejected(
                node, "an alias refers to a node that contains it; the value would be infinite"
            )
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path, depth)
        finally:
            self.open_nodes.discard(id(node))
        return None

    def _mapping(self, node: yaml.MappingNode, path: DocumentPath, depth: int) -> Any:
        if node.tag != _MAPPING_TAG:
            self._tag_finding(node)
        if any(key.tag == _MERGE_TAG for key, _ in node.value):
            self._check_merge_size(node)
            explicit_pairs = sum(1 for key, _ in node.value if key.tag != _MERGE_TAG)
            # PyYAML puts the merged pairs before the explicit ones, so an explicit key wins
            # over a merged one, as the YAML merge rules require. The count is kept because an
            # alias visits the flattened node again.
            # NOTE: with a list of merged mappings, PyYAML 6.0.4 lets a later mapping win,
            # while the YAML merge rules let the earlier one win.
            self.loader.flatten_mapping(node)
            self.merged_pairs[id(node)] = len(node.value) - explicit_pairs
        merged_pairs = self.merged_pairs.get(id(node), 0)

        result: dict[Any, Any] = {}
        explicit_keys: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self._key(key_node)
            child = (*path, key)
            explicit = index >= merged_pairs
            if explicit and key in explicit_keys:
                line, column = _mark(key_node)
                self.findings.append(
                    Finding(
                        self.document.file,
                        line,
                        column,
                        FindingKind.DUPLICATE_KEY,
                        f'key "{key}" appears twice in this mapping; remove one of them',
                    )
                )
            if explicit:
                explicit_keys.add(key)
            self.document.key_positions[child] = _mark(key_node)
            result[key] = self.value(value_node, child, depth + 1)
        return result

    def _sequence(self, node: yaml.SequenceNode, path: DocumentPath, depth: int) -> Any:
        if node.tag != _SEQUENCE_TAG:
            self._tag_finding(node)
        return [
            self.value(item, (*path, index), depth + 1) for index, item in enumerate(node.value)
        ]

    def _key(self, node: yaml.Node) -> str:
        """Return a mapping key as the text written in the file.

        Every key of the mapping language is a name, so `on`, `yes` or `N` (booleans in YAML
        1.1) and `404` stay the strings they look like. So a value map such as `{Y: true}`
        matches the event value "Y". A mapping or sequence as a key is reported.
        """
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                self._tag_finding(node)
            return str(node.value)
        line, column = _mark(node)
        self.findings.append(
            Finding(
                self.document.file,
                line,
                column,
                FindingKind.SCHEMA,
                "a mapping key is a mapping or a sequence; use a plain name as the key",
            )
        )
        return f"<key at line {line}>"

    def _check_merge_size(self, node: yaml.MappingNode) -> None:
        """Raise before `flatten_mapping` copies more than `MAX_NODES` pairs into `node`.

        The installed PyYAML 6.0.4 merges each key once. A release that copies every merged
        pair would grow exponentially on nested merges of one anchor.
        """
        pending: list[yaml.Node] = [node]
        pairs = 0
        while pending:
            current = pending.pop()
            if isinstance(current, yaml.SequenceNode):
                pending.extend(current.value)
                continue
            if not isinstance(current, yaml.MappingNode):
                continue
            for key, value in current.value:
                pairs += 1
                if pairs > self.nodes_left:
                    raise _DocumentRejected(node, self._too_many_nodes())
                if key.tag == _MERGE_TAG:
                    pending.append(value)

    def _count(self, node: yaml.Node) -> None:
        self.nodes_left -= 1
        if self.nodes_left < 0:
            raise _DocumentRejected(node, self._too_many_nodes())

    @staticmethod
    def _too_many_nodes() -> str:
        return (
            f"the document has more than {MAX_NODES} nodes once aliases are expanded; "
            "use fewer aliases or split the file"
        )

    def _tag_finding(self, node: yaml.Node) -> None:
        line, column = _mark(node)
        self.findings.append(
            Finding(
                self.document.file,
                line,
                column,
                FindingKind.SCHEMA,
                f"the tag {node.tag} is not allowed; remove it, because mapping files use "
                "plain YAML values only",
            )
        )


def _mark(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)
