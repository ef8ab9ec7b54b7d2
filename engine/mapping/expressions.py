"""Jinja2 expressions of the mapping language, compiled once in the immutable sandbox.

An expression can read two names: `input` (the object the step binds) and `event` (the whole
event). Missing attributes are chainable undefined values, so `input.a.b` on an event without `a`
is empty instead of an error.

The sandbox stops access to Python internals but not operations that build huge values, such as
`'x' * 9999999999`. The environment below therefore allows only the methods in `ALLOWED_METHODS`
and the filters in `ALLOWED_FILTERS`. Before an operation runs, it estimates the size of the
result of every operation that can build more than a fixed multiple of its input: `*`, `**`,
`%`, `~`, padding widths, `replace`, `join` and format strings. After an operation runs, it
measures the result of every filter, method call, `+` and `~`. It raises SecurityError when a
repetition, width or `replace` would exceed `MAX_RESULT_LENGTH`, an integer `MAX_INTEGER_BITS`
bits, or any other value `MAX_VALUE_SIZE` (see `value_size`). Every value an expression builds
is so at most a few times `MAX_VALUE_SIZE`, and the expression fails with MappingRuntimeError
instead of MemoryError.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from engine.errors import MappingRuntimeError
from engine.events.paths import MISSING
from engine.planning.plan import EventPath

CONTEXT_NAMES = ("input", "event")

MAX_RESULT_LENGTH = 100_000
"""Maximum size of a value that `*`, padding, a format width or `replace` may produce."""
MAX_INTEGER_BITS = 100_000
"""Maximum size in bits of an integer that `*` or `**` may produce."""
MAX_VALUE_SIZE = 1_000_000
"""Maximum size (see `value_size`) of any value that an operation in an expression returns."""

# Methods and filters whose integer arguments set the length of their result.
SIZED_CALLS = frozenset({"center", "ljust", "rjust", "zfill"})

# Methods an expression may call: text, dict and list methods whose result is at most a fixed
# multiple of their input, plus the ones checked above and `replace`, `join` and `format`.
# Left out: `expandtabs`, whose result grows with the tab count times the tab size.
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
# arguments set how many items they build, `indent` and `wordwrap`, whose results grow with the
# line count times an argument, `random`, which breaks repeatable plans, and the HTML and
# debugging filters.
ALLOWED_FILTERS = frozenset(
    {
        *("abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort"),
        *("first", "float", "format", "int", "items", "join", "last", "length"),
        *("list", "lower", "map", "max", "min", "reject", "rejectattr", "replace"),
        *("reverse", "round", "select", "selectattr", "sort", "string", "sum", "title"),
        *("tojson", "trim", "truncate", "unique", "upper", "wordcount"),
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
        if isinstance(right, dict):
            arguments = list(right.values())
        elif isinstance(right, tuple):
            arguments = list(right)
        else:
            arguments = [right]
        check_format_size(left, arguments)


def value_size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """Return the size of `value`: characters of strings plus items of lists, tuples, sets and
    dicts, with the items' own sizes added. Numbers and other values count 0.

    Counting stops once the size exceeds `limit`, so a list that repeats one large string
    costs at most `limit` steps. A shared item counts once for every place it appears.
    """
    size = 0
    pending = [value]
    while pending and size <= limit:
        current = pending.pop()
        if isinstance(current, str | bytes):
            size += len(current)
        elif isinstance(current, dict):
            size += len(current)
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list | tuple | set | frozenset):
            size += len(current)
            pending.extend(current)
    return size


def check_size(value: Any, operation: str) -> None:
    """Raise SecurityError when `value`, the result of `operation`, exceeds `MAX_VALUE_SIZE`."""
    if value_size(value) > MAX_VALUE_SIZE:
        raise SecurityError(
            f"{operation} gave a value over the size limit of {MAX_VALUE_SIZE} "
            "(characters plus items)"
        )


def check_format_size(text: str, arguments: Iterable[Any]) -> None:
    """Raise SecurityError when formatting `text` with `arguments` could exceed the size limit.

    Each replacement field or conversion may repeat the largest argument, because fields such
    as `{0}` and `%(name)s` can name one argument many times, and may pad it to its width.
    """
    fields = len(_PERCENT_SPEC.findall(text))
    try:
        fields += sum(1 for _, name, _, _ in string.Formatter().parse(text) if name is not None)
    except ValueError:
        pass  # Not a valid str.format string: formatting raises ValueError, a data error.
    if fields == 0:
        return
    widest = max((int(number) for number in re.findall(r"\d+", text)), default=0)
    largest = max((value_size(argument) for argument in arguments), default=0)
    estimate = len(text) + fields * (largest + min(widest, MAX_RESULT_LENGTH))
    if estimate > MAX_VALUE_SIZE:
        raise SecurityError(
            f"formatting {fields} fields with a value of size {largest} could give {estimate} "
            f"characters, over the limit of {MAX_VALUE_SIZE}"
        )


def check_join(items: list[Any], separator: Any) -> None:
    """Raise SecurityError when joining `items` with `separator` would exceed the size limit."""
    size = sum(value_size(item) for item in items)
    size += max(len(items) - 1, 0) * value_size(str(separator))
    if size > MAX_VALUE_SIZE:
        raise SecurityError(
            f"joining {len(items)} items would give about {size} characters, over the limit of "
            f"{MAX_VALUE_SIZE}"
        )


def bounded_list(items: Iterable[Any], operation: str) -> list[Any]:
    """Collect `items` into a list, raising SecurityError once their sizes add up over the
    limit, so a lazy sequence of large items is never built in full."""
    collected: list[Any] = []
    size = 0
    for item in items:
        size += 1 + value_size(item)
        if size > MAX_VALUE_SIZE:
            raise SecurityError(
                f"{operation} reads items over the size limit of {MAX_VALUE_SIZE} "
                "(characters plus items)"
            )
        collected.append(item)
    return collected


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

    Intercepting `*`, `**`, `%` and `+` also keeps Jinja2 from folding them at compile time, where
    `'x' * 9999999999` would otherwise be built before any check.
    """

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        filters = {name: self.filters[name] for name in sorted(ALLOWED_FILTERS)}
        filters["replace"] = _replace_filter(filters["replace"])
        filters["center"] = _sized_filter("center", filters["center"])
        filters["format"] = _format_filter(filters["format"])
        filters["join"] = _join_filter(filters["join"])
        filters["sum"] = _sum_filter(filters["sum"])
        filters["tojson"] = _tojson_filter(filters["tojson"])
        self.filters = {name: _size_checked(name, function) for name, function in filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_operation(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        check_size(result, operator)
        return result

    def concat_operands(self, parts: tuple[Any, ...]) -> str:
        """Join the operands of `~` as strings, stopping once their length exceeds the limit."""
        texts = bounded_list((str(part) for part in parts), "~")
        return "".join(texts)

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
            if name == "join" and args:
                args = (bounded_list(args[0], "join()"), *args[1:])
                check_join(args[0], getattr(__obj, "__self__", ""))
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, Iterator):
            return _bounded_iterator(result, f"{getattr(__obj, '__name__', 'call')}()")
        check_size(result, f"{getattr(__obj, '__name__', 'call')}()")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__
        check_format_string(text)

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if value.__name__ == "format_map" and args else {}
            values = [*args, *kwargs.values()]
            if isinstance(mapping, dict):
                values.extend(mapping.values())
            check_format_size(text, values)
            return wrapped(*args, **kwargs)

        return checked


class BoundedCodeGenerator(CodeGenerator):
    """Jinja2's code generator, with `~` sent through `BoundedSandbox.concat_operands`."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_operands((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


BoundedSandbox.code_generator_class = BoundedCodeGenerator


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
    underscore, and an operation on constants that builds a value over the limits. The last is
    found by evaluating the expression once with no input and an empty event, which is cheap
    because the sandbox bounds every value. Raises TemplateSyntaxError.
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
    if not problems:
        problems.extend(_trial_problems(text))
    return problems


def _trial_problems(text: str) -> list[str]:
    compiled = ENVIRONMENT.compile_expression(text, undefined_to_none=False)
    try:
        compiled(input=None, event={})
    except SecurityError as error:
        return [str(error)]
    except Exception:  # noqa: BLE001 - failures on the empty event are data errors, not findings.
        return []
    return []


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
            check_format_size(value, [*args, *kwargs.values()])
        return function(value, *args, **kwargs)

    return checked


def _join_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
        items = bounded_list(value, "join")
        check_join(items, d)
        return function(eval_ctx, items, d, attribute)

    return checked


def _sum_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        # Summing lists copies the running total at every item, which takes quadratic time.
        if not isinstance(start, int | float) or isinstance(start, bool):
            raise SecurityError("sum() adds only numbers; a start value must be a number")
        return function(environment, iterable, attribute, start)

    return checked


def _tojson_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(eval_ctx: Any, value: Any, indent: Any = None) -> Any:
        # Indented JSON grows with the item count times the nesting depth times the indent.
        if indent is not None:
            raise SecurityError("tojson with an indent is not allowed")
        return function(eval_ctx, value)

    return checked


def _size_checked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if isinstance(result, Iterator):
            return _bounded_iterator(result, name)
        check_size(result, name)
        return result

    return checked


def _bounded_iterator(items: Iterator[Any], operation: str) -> Iterator[Any]:
    size = 0
    for item in items:
        size += 1 + value_size(item)
        if size > MAX_VALUE_SIZE:
            raise SecurityError(
                f"{operation} gave items over the size limit of {MAX_VALUE_SIZE} "
                "(characters plus items)"
            )
        yield item


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_repeat(sequence: Any, count: Any) -> None:
    # The size counts the items' contents, so `[long_text] * n` is measured as n long texts.
    if isinstance(sequence, str | bytes | list | tuple) and _is_int(count):
        size = value_size(sequence, MAX_RESULT_LENGTH)
        if size * count > MAX_RESULT_LENGTH:
            raise SecurityError(
                f"repeating a value of size {size} {count} times gives a size of "
                f"{size * count}, over the limit of {MAX_RESULT_LENGTH}"
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
