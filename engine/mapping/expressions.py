"""Jinja2 expressions of the mapping language, compiled once in the immutable sandbox.

An expression can read two names: `input` (the object the step binds) and `event` (the whole
event). Missing attributes are chainable undefined values, so `input.a.b` on an event without `a`
is empty instead of an error.

The sandbox stops access to Python internals but not operations that build huge values, such as
`'x' * 9999999999`. The environment below therefore allows only the methods in `ALLOWED_METHODS`
and the filters in `ALLOWED_FILTERS`. It checks `*`, `**` and `%`, padding widths, `replace`
and format strings before they run, and raises SecurityError when a result would exceed
`MAX_RESULT_LENGTH` characters or `MAX_INTEGER_BITS` bits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from engine.errors import MappingRuntimeError
from engine.events.paths import MISSING
from engine.planning.plan import EventPath

CONTEXT_NAMES = ("input", "event")

MAX_RESULT_LENGTH = 100_000
"""Maximum length of a string or list that `*`, padding or a format width may produce."""
MAX_INTEGER_BITS = 100_000
"""Maximum size in bits of an integer that `*` or `**` may produce."""

# Methods and filters whose integer arguments set the length of their result.
SIZED_CALLS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "indent"})

# Methods an expression may call: text, dict and list methods whose result is at most a fixed
# multiple of their input, plus the ones checked above and `replace` and `format`.
ALLOWED_METHODS = frozenset(
    {
        *SIZED_CALLS,
        *("upper", "lower", "title", "capitalize", "casefold", "swapcase"),
        *("strip", "lstrip", "rstrip", "removeprefix", "removesuffix"),
        *("startswith", "endswith", "find", "rfind", "index", "count"),
        *("isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace"),
        *("islower", "isupper", "split", "rsplit", "partition", "rpartition", "join"),
        *("replace", "format", "get", "keys", "values", "items"),
    }
)

# Jinja2's built-in filters an expression may use. Left out: `batch` and `slice`, whose
# arguments set how many items they build, `random`, which breaks repeatable plans, and the
# HTML and debugging filters.
ALLOWED_FILTERS = frozenset(
    {
        *("abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort"),
        *("first", "float", "format", "indent", "int", "items", "join", "last", "length"),
        *("list", "lower", "map", "max", "min", "reject", "rejectattr", "replace"),
        *("reverse", "round", "select", "selectattr", "sort", "string", "sum", "title"),
        *("tojson", "trim", "truncate", "unique", "upper", "wordcount", "wordwrap"),
    }
)

# A printf-style conversion (`%10.3f`) and a str.format replacement field (`{0:>10}`).
_PERCENT_SPEC = re.compile(r"%[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:([^{}]*)(\{?)")

# Exceptions that an expression raises because of the event's own values, for example when it
# adds a number to a string. Other template errors, SecurityError among them, are mapping bugs.
DATA_ERRORS = (
    UndefinedError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
)


class ExpressionEvaluationError(ValueError):
    """An expression failed on this event's data; the message names the expression."""


def check_operation(operator: str, left: Any, right: Any) -> None:
    """Raise SecurityError when `left operator right` would build a value over the limits."""
    if operator == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
        if _is_int(left) and _is_int(right):
            _check_bits(left.bit_length() + right.bit_length(), operator)
    elif operator == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            _check_bits(left.bit_length() * right, operator)
    elif operator == "%" and isinstance(left, str):
        check_format_string(left)


def check_format_string(text: str) -> None:
    """Raise SecurityError when a format string requests a width or precision over the limit.

    A width taken from the arguments (`%*d`, `{:{}}`) is rejected too, because it cannot be
    checked before formatting.
    """
    for match in _PERCENT_SPEC.finditer(text):
        for number in match.groups():
            _check_width(number)
    for match in _BRACE_SPEC.finditer(text):
        if match.group(2):
            raise SecurityError("a format width taken from the arguments is not allowed")
        for number in re.findall(r"\d+", match.group(1)):
            _check_width(number)


def check_sized_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise SecurityError when a padding method or filter gets a width over the limit."""
    if name not in SIZED_CALLS:
        return
    for value in (*args, *kwargs.values()):
        if _is_int(value) and value > MAX_RESULT_LENGTH:
            raise SecurityError(
                f"{name}() with a width of {value} exceeds the limit of {MAX_RESULT_LENGTH}"
            )


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    """Raise SecurityError when `text.replace(old, new, count)` would exceed the length limit."""
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if _is_int(count) and count >= 0:
        occurrences = min(occurrences, count)
    length = len(text) + occurrences * (len(new) - len(old))
    if length > MAX_RESULT_LENGTH:
        raise SecurityError(
            f"replace() would give {length} characters, over the limit of {MAX_RESULT_LENGTH}"
        )


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus limits on the size of values an expression builds.

    Intercepting `*`, `**` and `%` also keeps Jinja2 from folding them at compile time, where
    `'x' * 9999999999` would otherwise be built before any check.
    """

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: self.filters[name] for name in sorted(ALLOWED_FILTERS)}
        self.filters["replace"] = _replace_filter(self.filters["replace"])
        for name in ("center", "indent"):
            self.filters[name] = _sized_filter(name, self.filters[name])
        self.filters["format"] = _format_filter(self.filters["format"])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_operation(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(
        __self,  # Jinja2 names it so, to free `self` for keyword arguments.
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if not isinstance(__obj, Undefined):
            name = getattr(__obj, "__name__", "")
            if name not in ALLOWED_METHODS:
                raise SecurityError(f"calling {name or type(__obj).__name__}() is not allowed")
            check_sized_call(name, args, kwargs)
            if name == "replace":
                check_replace(getattr(__obj, "__self__", None), *args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            check_format_string(value.__self__)
        return wrapped


@dataclass(frozen=True)
class Expression:
    """A compiled expression and the text it was compiled from."""

    text: str
    compiled: Any
    reads: tuple[tuple[str, EventPath], ...] = ()
    """The attribute chains the expression reads, as `referenced_paths` returns them."""

    def evaluate(self, input_value: Any, event: dict[str, Any]) -> Any:
        """Return the expression's value; undefined becomes `MISSING`.

        Raises ExpressionEvaluationError when the expression fails on this data, for example
        when it adds a number to a string, and MappingRuntimeError when the sandbox stops it
        or another template error shows a bug in the mapping itself.
        """
        bound = None if input_value is MISSING else input_value
        try:
            result = self.compiled(input=bound, event=event)
        except DATA_ERRORS as error:
            raise ExpressionEvaluationError(
                f"expression {self.text!r} failed: {type(error).__name__}"
            ) from error
        except TemplateError as error:
            raise MappingRuntimeError(
                f"expression {self.text!r} in the mappings failed: {type(error).__name__}: "
                f"{str(error).rstrip('.')}; fix the expression and run zoho-connector validate"
            ) from error
        return MISSING if isinstance(result, Undefined) else result


def compile_expression(text: str) -> Expression:
    """Compile `text`; raises jinja2's TemplateSyntaxError with the line of the problem."""
    compiled = ENVIRONMENT.compile_expression(text, undefined_to_none=False)
    return Expression(text, compiled, tuple(referenced_paths(text)))


def unsafe_parts(text: str) -> list[str]:
    """Return a message for each part of an expression that the sandbox would stop at run time.

    That is a name other than `input` and `event`, an attribute or key that starts with an
    underscore, and an operation on constants that builds a value over the limits. Raises
    TemplateSyntaxError.
    """
    tree = ENVIRONMENT.parse("{{ " + text + " }}")
    problems: list[str] = []
    for name in tree.find_all(nodes.Name):
        if name.name not in CONTEXT_NAMES:
            problems.append(
                f"name {name.name!r} is not available; an expression reads only input and event"
            )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        private = _private_name(node)
        if private is not None:
            problems.append(f"{private!r} starts with an underscore, which the sandbox forbids")
    for call in tree.find_all(nodes.Call):
        callee = call.node
        if isinstance(callee, nodes.Getattr) and callee.attr not in ALLOWED_METHODS:
            problems.append(
                f"method {callee.attr}() is not allowed; allowed methods: "
                f"{', '.join(sorted(ALLOWED_METHODS))}"
            )
    for node in tree.find_all((nodes.Mul, nodes.Pow, nodes.Mod, nodes.Call, nodes.Filter)):
        problem = _constant_size_problem(node)
        if problem is not None:
            problems.append(problem)
    return problems


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


def _private_name(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        name: Any = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        name = node.arg.value
    elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
        argument = node.args[0]
        name = argument.value if isinstance(argument, nodes.Const) else None
    else:
        return None
    return name if isinstance(name, str) and name.startswith("_") else None


def _constant_size_problem(node: nodes.Node) -> str | None:
    """Return why an operation on constants would be stopped at run time, or None."""
    try:
        if isinstance(node, nodes.BinExpr):
            if isinstance(node.left, nodes.Const) and isinstance(node.right, nodes.Const):
                check_operation(node.operator, node.left.value, node.right.value)
        elif isinstance(node, nodes.Call | nodes.Filter):
            name = node.name if isinstance(node, nodes.Filter) else getattr(node.node, "attr", "")
            constants = tuple(arg.value for arg in node.args if isinstance(arg, nodes.Const))
            check_sized_call(name, constants, {})
            template: nodes.Node | None = node.node
            if isinstance(template, nodes.Getattr):
                template = template.node
            if name == "format" and isinstance(template, nodes.Const):
                if isinstance(template.value, str):
                    check_format_string(template.value)
            all_constant = len(constants) == len(node.args)
            if name == "replace" and isinstance(template, nodes.Const) and all_constant:
                check_replace(template.value, *constants)
    except SecurityError as error:
        return str(error)
    return None


def _sized_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_sized_call(name, args[1:], kwargs)
        return function(*args, **kwargs)

    return checked


def _replace_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(eval_ctx: Any, text: Any, old: Any, new: Any, count: Any = None) -> Any:
        check_replace(text, old, new, -1 if count is None else count)
        return function(eval_ctx, text, old, new, count)

    return checked


def _format_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            check_format_string(value)
        return function(value, *args, **kwargs)

    return checked


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_repeat(sequence: Any, count: Any) -> None:
    if isinstance(sequence, str | bytes | list | tuple) and _is_int(count):
        length = len(sequence) * count
        if length > MAX_RESULT_LENGTH:
            raise SecurityError(
                f"repeating a value of length {len(sequence)} {count} times gives {length} items, "
                f"over the limit of {MAX_RESULT_LENGTH}"
            )


def _check_bits(bits: int, operator: str) -> None:
    if bits > MAX_INTEGER_BITS:
        raise SecurityError(
            f"the result of {operator} would have about {bits} bits, over the limit of "
            f"{MAX_INTEGER_BITS}"
        )


def _check_width(number: str | None) -> None:
    if number == "*":
        raise SecurityError("a format width taken from the arguments is not allowed")
    if number and (len(number) > len(str(MAX_RESULT_LENGTH)) or int(number) > MAX_RESULT_LENGTH):
        raise SecurityError(f"a format width of {number} exceeds the limit of {MAX_RESULT_LENGTH}")


def _is_prefix(short: tuple[str, EventPath], long: tuple[str, EventPath]) -> bool:
    return short[0] == long[0] and long[1][: len(short[1])] == short[1]


ENVIRONMENT = BoundedSandbox(undefined=ChainableUndefined, autoescape=False)


__all__ = [
    "Expression",
    "ExpressionEvaluationError",
    "TemplateSyntaxError",
    "compile_expression",
    "referenced_paths",
    "unsafe_parts",
]
