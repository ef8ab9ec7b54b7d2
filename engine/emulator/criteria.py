"""Parsing and matching of Zoho search criteria such as `((A:equals:x)and(B:starts_with:y))`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = ("equals", "not_equal", "starts_with")
WORD = re.compile(r"[^\W_]+", re.UNICODE)


class CriteriaError(ValueError):
    """The criteria string is malformed."""


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: str


@dataclass(frozen=True)
class Group:
    joiner: str
    """`and` or `or`."""

    parts: tuple[Condition | Group, ...]


def parse_criteria(text: str) -> Condition | Group:
    """Parse a criteria string; a backslash makes the next character part of the value."""
    parser = _Parser(text)
    node = parser.expression()
    if parser.position != len(text):
        raise CriteriaError(f"unexpected text at position {parser.position}")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def expression(self) -> Condition | Group:
        parts = [self.term()]
        joiners: set[str] = set()
        while self.position < len(self.text) and self.text[self.position] != ")":
            joiner = self._joiner()
            joiners.add(joiner)
            parts.append(self.term())
        if len(joiners) > 1:
            raise CriteriaError("mixing `and` and `or` needs brackets")
        if len(parts) == 1:
            return parts[0]
        return Group(joiner=joiners.pop(), parts=tuple(parts))

    def term(self) -> Condition | Group:
        self._expect("(")
        if self.text.startswith("(", self.position):
            node = self.expression()
        else:
            node = self.condition()
        self._expect(")")
        return node

    def condition(self) -> Condition:
        field = self._until(":")
        self._expect(":")
        operator = self._until(":")
        self._expect(":")
        if operator not in OPERATORS:
            raise CriteriaError(f"unsupported operator {operator!r}")
        value = self._value()
        if not field:
            raise CriteriaError("missing field name")
        return Condition(field=field, operator=operator, value=value)

    def _joiner(self) -> str:
        for joiner in ("and", "or"):
            if self.text.startswith(joiner, self.position):
                self.position += len(joiner)
                return joiner
        raise CriteriaError(f"expected `and` or `or` at position {self.position}")

    def _until(self, stop: str) -> str:
        start = self.position
        while self.position < len(self.text) and self.text[self.position] not in stop + "()":
            self.position += 1
        return self.text[start : self.position]

    def _value(self) -> str:
        characters: list[str] = []
        while self.position < len(self.text):
            character = self.text[self.position]
            if character == "\\" and self.position + 1 < len(self.text):
                characters.append(self.text[self.position + 1])
                self.position += 2
                continue
            if character == ")":
                break
            if character in "(,":
                raise CriteriaError(f"unescaped {character!r} in a value")
            characters.append(character)
            self.position += 1
        return "".join(characters)

    def _expect(self, character: str) -> None:
        if not self.text.startswith(character, self.position):
            raise CriteriaError(f"expected {character!r} at position {self.position}")
        self.position += 1


def criteria_fields(node: Condition | Group) -> list[str]:
    if isinstance(node, Condition):
        return [node.field]
    return [name for part in node.parts for name in criteria_fields(part)]


def matches(node: Condition | Group, record: dict[str, Any]) -> bool:
    if isinstance(node, Group):
        results = (matches(part, record) for part in node.parts)
        return all(results) if node.joiner == "and" else any(results)
    return _condition_matches(node, record.get(node.field))


def _condition_matches(condition: Condition, stored: Any) -> bool:
    if isinstance(stored, dict):
        stored = stored.get("id")
    if stored is None:
        return False
    if condition.operator == "starts_with":
        return str(stored).casefold().startswith(condition.value.casefold())
    if condition.operator == "not_equal":
        return not _equals(stored, condition.value)
    return _equals(stored, condition.value)


def _equals(stored: Any, value: str) -> bool:
    """Zoho's `equals`: numbers compare exactly, text matches whole words in order.

    `(Company:equals:ABC)` also finds `ABC Inc`, as Zoho's search does.
    """
    if isinstance(stored, bool):
        return str(stored).lower() == value.lower()
    if isinstance(stored, int | float):
        try:
            return Decimal(value) == Decimal(str(stored))
        except InvalidOperation:
            return False
    stored_words = [word.casefold() for word in WORD.findall(str(stored))]
    wanted_words = [word.casefold() for word in WORD.findall(value)]
    if not wanted_words:
        return str(stored).casefold() == value.casefold()
    width = len(wanted_words)
    return any(
        stored_words[start : start + width] == wanted_words
        for start in range(len(stored_words) - width + 1)
    )
