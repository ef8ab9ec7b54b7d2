"""Size limits of the expression sandbox, checked in a child process with a memory cap.

Each case runs in its own Python process whose address space is capped, so an expression that
escapes the limits ends in MemoryError there instead of filling this machine's memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from typing import Any

import pytest

from engine.mapping.expressions import MAX_VALUE_SIZE, compile_expression, value_size

MEMORY_CAP_BYTES = 1_500_000_000

# Validates the expression, then evaluates it on one event, and prints what happened as JSON.
CHILD_SCRIPT = """
import json, sys
from jinja2 import TemplateSyntaxError
from engine.errors import MappingRuntimeError
from engine.mapping.expressions import compile_expression, unsafe_parts

text, input_value = json.loads(sys.stdin.read())
outcome = {}
try:
    outcome["findings"] = unsafe_parts(text)
    expression = compile_expression(text)
except TemplateSyntaxError as error:
    outcome["findings"] = ["syntax: " + error.message]
else:
    try:
        value = expression.evaluate(input_value, {})
        outcome["runtime"] = "value of length " + str(len(str(value)))
    except MappingRuntimeError as error:
        outcome["runtime"] = error.message
    except MemoryError:
        outcome["runtime"] = "MemoryError"
print(json.dumps(outcome))
"""

TEXT = {"text": "y" * 400_000, "short": "z", "items": ["q"] * 1000}


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def run_capped(text: str, input_value: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD_SCRIPT],
        input=json.dumps([text, input_value]),
        capture_output=True,
        text=True,
        preexec_fn=_cap_memory,
        timeout=120,
        check=False,
    )
    assert completed.stderr == ""
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def sandbox_failure(text: str, reason: str) -> str:
    return (
        f"expression {text!r} in the mappings failed: SecurityError: {reason}; "
        "fix the expression and run zoho-connector validate"
    )


REPEAT_100001 = (
    "repeating a value of size 100001 100000 times gives a size of 10000100000, "
    "over the limit of 100000"
)
FORMAT_1000 = (
    "formatting 1000 fields with a value of size 100000 could give 100003000 characters, "
    "over the limit of 1000000"
)
REPEAT_2 = (
    "repeating a value of size 2 100000 times gives a size of 200000, over the limit of 100000"
)


@pytest.mark.parametrize(
    ("text", "finding", "runtime"),
    [
        pytest.param(
            "(['x' * 100000] * 100000) | join",
            REPEAT_100001,
            REPEAT_100001,
            id="join of a repeated long string",
        ),
        pytest.param(
            "(['x' * 100000] * 100000) | string",
            REPEAT_100001,
            REPEAT_100001,
            id="string of a repeated long string",
        ),
        pytest.param(
            "(['x' * 100000] * 100000) | tojson",
            REPEAT_100001,
            REPEAT_100001,
            id="tojson of a repeated long string",
        ),
        pytest.param(
            "('{0}' * 1000).format('x' * 100000)",
            FORMAT_1000,
            FORMAT_1000,
            id="format with a field repeated",
        ),
        pytest.param(
            "([['x'] * 100000] * 100000) | sum(start=[])",
            REPEAT_2,
            REPEAT_2,
            id="sum over repeated lists",
        ),
    ],
)
def test_constant_blowup_rejected(text: str, finding: str, runtime: str) -> None:
    outcome = run_capped(text, {})

    assert outcome["findings"] == [finding]
    assert outcome["runtime"] == sandbox_failure(text, runtime)


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        pytest.param(
            "('\\t' * 100000).expandtabs(100000)",
            "method expandtabs() is not allowed",
            id="expandtabs",
        ),
        pytest.param(
            "('a\\n' * 50000) | indent(100000)",
            "syntax: No filter named 'indent'.",
            id="indent filter",
        ),
        pytest.param(
            "('x' * 100000) | wordwrap(1, true, 'y' * 100000)",
            "syntax: No filter named 'wordwrap'.",
            id="wordwrap with a long wrapstring",
        ),
    ],
)
def test_unbounded_call_not_allowed(text: str, finding: str) -> None:
    outcome = run_capped(text, {})

    assert outcome["findings"][0].startswith(finding)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            "([input.text] * 100000) | join",
            "repeating a value of size 400001 100000 times gives a size of 40000100000, "
            "over the limit of 100000",
            id="event string repeated in a list",
        ),
        pytest.param(
            "('{0}' * 1000).format(input.text)",
            "formatting 1000 fields with a value of size 400000 could give 400003000 "
            "characters, over the limit of 1000000",
            id="event string formatted many times",
        ),
        pytest.param(
            "'%(a)s' * 20 % {'a': input.text}",
            "formatting 20 fields with a value of size 400000 could give 8000100 characters, "
            "over the limit of 1000000",
            id="event string in a printf mapping",
        ),
        pytest.param(
            "input.text ~ input.text ~ input.text",
            "~ reads items over the size limit of 1000000 (characters plus items)",
            id="concatenation of event strings",
        ),
        pytest.param(
            "input.text + input.text + input.text",
            "+ gave a value over the size limit of 1000000 (characters plus items)",
            id="addition of event strings",
        ),
        pytest.param(
            "input['items'] | join(input.text)",
            "joining 1000 items would give about 399601000 characters, over the limit of 1000000",
            id="join with an event separator",
        ),
        pytest.param(
            "input.text.join(input['items'])",
            "joining 1000 items would give about 399601000 characters, over the limit of 1000000",
            id="join method with an event separator",
        ),
        pytest.param(
            "input['items'] | map('center', 100000) | list",
            "map gave items over the size limit of 1000000 (characters plus items)",
            id="padded items of a lazy map",
        ),
        pytest.param(
            "input.text | tojson(indent=4)",
            "tojson with an indent is not allowed",
            id="tojson with an indent",
        ),
        pytest.param(
            "[[1]] | sum(start=[])",
            "sum() adds only numbers; a start value must be a number",
            id="sum with a list start",
        ),
    ],
)
def test_event_blowup_is_mapping_error(text: str, reason: str) -> None:
    outcome = run_capped(text, TEXT)

    assert outcome["runtime"] == sandbox_failure(text, reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("input.short ~ ' ' ~ input.short", "z z", id="concatenation"),
        pytest.param("'%s-%s' % (input.short, input.short)", "z-z", id="printf tuple"),
        pytest.param("'{}:{}'.format(input.short, 1)", "z:1", id="str format"),
        pytest.param("'%s' | format(input.short)", "z", id="format filter"),
        pytest.param("[1, 2] | sum", 3, id="sum of numbers"),
        pytest.param("['a', 'b'] | join(', ')", "a, b", id="join filter"),
        pytest.param("'-'.join(['a', 'b'])", "a-b", id="join method"),
        pytest.param("['a', 'b'] | map('upper') | list", ["A", "B"], id="lazy map"),
        pytest.param("input.text | length", 400_000, id="long event string"),
        pytest.param("{'a': [1]} | tojson", '{"a": [1]}', id="tojson without indent"),
    ],
)
def test_bounded_expression_evaluates(text: str, expected: Any) -> None:
    assert compile_expression(text).evaluate(TEXT, {}) == expected


@pytest.mark.parametrize(
    ("value", "size"),
    [
        pytest.param("abc", 3, id="string"),
        pytest.param(["ab", "c"], 5, id="list of strings"),
        pytest.param({"ab": [1, 2]}, 5, id="dict of a list"),
        pytest.param(12345, 0, id="number"),
        pytest.param(["x" * 600_000] * 2, MAX_VALUE_SIZE + 1, id="shared item counted twice"),
    ],
)
def test_value_size(value: Any, size: int) -> None:
    measured = value_size(value)

    assert min(measured, MAX_VALUE_SIZE + 1) == size
