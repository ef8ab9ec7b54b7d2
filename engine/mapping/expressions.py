"""Jinja2 expressions of the mapping language, compiled once in the immutable sandbox.

An expression can read two names: `input` (the object the step binds) and `event` (the whole
event). Missing attributes are chainable undefined values, so `input.a.b` on an event without `a`
is empty instead of an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.events.paths import MISSING
from engine.planning.plan import EventPath

ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
CONTEXT_NAMES = ("input", "event")

# Exceptions that evaluating a compiled expression on event data can raise: the sandbox's security
# and undefined errors, and Python's own errors of the operations an expression may use.
EVALUATION_ERRORS = (
    TemplateError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
)


class ExpressionEvaluationError(ValueError):
    """An expression failed on this event's data; the message names the expression."""


@dataclass(frozen=True)
class Expression:
    """A compiled expression and the text it was compiled from."""

    text: str
    compiled: Any

    def evaluate(self, input_value: Any, event: dict[str, Any]) -> Any:
        """Return the expression's value; undefined becomes `MISSING`.

        Raises ExpressionEvaluationError when the expression fails on this data, for example
        when it adds a number to a string.
        """
        bound = None if input_value is MISSING else input_value
        try:
            result = self.compiled(input=bound, event=event)
        except EVALUATION_ERRORS as error:
            raise ExpressionEvaluationError(
                f"expression {self.text!r} failed: {type(error).__name__}"
            ) from error
        return MISSING if isinstance(result, Undefined) else result


def compile_expression(text: str) -> Expression:
    """Compile `text`; raises jinja2's TemplateSyntaxError with the line of the problem."""
    return Expression(text, ENVIRONMENT.compile_expression(text, undefined_to_none=False))


def referenced_paths(text: str) -> list[tuple[str, EventPath]]:
    """Return the attribute chains an expression reads from `input` or `event`.

    `input.sim.msisdn` gives ("input", ("sim", "msisdn")). Chains through filters or calls are
    cut where they stop being plain attribute or item access. Raises TemplateSyntaxError.
    """
    tree = ENVIRONMENT.parse("{{ " + text + " }}")
    callees = {id(call.node) for call in tree.find_all(nodes.Call)}
    chains: list[tuple[str, EventPath]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if id(node) in callees:
            # `input.firstname.upper()` reads input.firstname; `upper` is a method, not a path.
            continue
        chain = _chain(node)
        if chain is not None and chain not in chains:
            chains.append(chain)
    return [c for c in chains if not any(_is_prefix(c, other) for other in chains if other != c)]


def _chain(node: nodes.Node) -> tuple[str, EventPath] | None:
    segments: list[str | int] = []
    current: nodes.Node = node
    while isinstance(current, nodes.Getattr | nodes.Getitem):
        if isinstance(current, nodes.Getattr):
            segments.append(current.attr)
        elif isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str | int):
            segments.append(current.arg.value)
        else:
            return None
        current = current.node
    if isinstance(current, nodes.Name) and current.name in CONTEXT_NAMES:
        return current.name, tuple(reversed(segments))
    return None


def _is_prefix(short: tuple[str, EventPath], long: tuple[str, EventPath]) -> bool:
    return short[0] == long[0] and long[1][: len(short[1])] == short[1]


__all__ = [
    "Expression",
    "ExpressionEvaluationError",
    "TemplateSyntaxError",
    "compile_expression",
    "referenced_paths",
]
