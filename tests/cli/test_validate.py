"""`zoho-connector validate` through the command-line entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

REPOSITORY = Path(__file__).parents[2]


@pytest.fixture
def broken_mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a copy of the shipped mappings with a misspelled field, as the working directory."""
    shutil.copytree(REPOSITORY / "mappings", tmp_path / "mappings")
    contacts = tmp_path / "mappings" / "contacts.yaml"
    text = contacts.read_text(encoding="utf-8")
    contacts.write_text(text.replace("field: Email\n", "field: E_mail\n"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "mappings"


def test_shipped_files_pass(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["validate"])

    captured = capsys.readouterr()
    assert status == 0
    assert captured.out == ""
    assert captured.err.startswith("OK: ")


def test_findings_as_text(broken_mappings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["validate", "mappings"])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == (
        "mappings/contacts.yaml:18:16: unknown-field: Contacts has no field E_mail "
        '(did you mean "Email"?); fields are defined in crm-modules.yaml\n'
    )
    assert captured.err == "1 finding(s)\n"


def test_findings_as_github_annotations(
    broken_mappings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["validate", "mappings", "--format", "github"])

    assert status == 1
    assert capsys.readouterr().out == (
        "::error file=mappings/contacts.yaml,line=18,col=16::unknown-field: Contacts has no "
        'field E_mail (did you mean "Email"?); fields are defined in crm-modules.yaml\n'
    )


def test_schema_directory_checked_with_mappings(
    broken_mappings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPOSITORY / "schemas", broken_mappings.parent / "schemas")
    event_schema = broken_mappings.parent / "schemas" / "nsps-event.schema.json"
    event_schema.write_text("{", encoding="utf-8")

    status = main(["validate", "mappings", "schemas"])

    assert status == 1
    assert capsys.readouterr().out == (
        "schemas/nsps-event.schema.json:1:2: json-syntax: invalid JSON: Expecting property "
        "name enclosed in double quotes; fix the syntax at this position\n"
    )


def test_missing_path_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    status = main(["validate", "nowhere"])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err == "zoho-connector validate: nowhere: no such file or directory\n"


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--format", "xml"])

    assert exited.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def _alias_bomb(levels: int) -> str:
    """Return YAML whose last anchor expands to 9**levels scalars ("billion laughs")."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        previous = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{previous}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            _alias_bomb(9).encode(),
            "mappings/extra.yaml:1:17: yaml-syntax: the document has more than 100000 nodes once "
            "aliases are expanded; use fewer aliases or split the file\n",
            id="alias bomb",
        ),
        pytest.param(
            b"x: &x\n  - *x\n",
            "mappings/extra.yaml:1:4: yaml-syntax: an alias refers to a node that contains it; "
            "the value would be infinite\n",
            id="alias inside its own anchor",
        ),
        pytest.param(
            ("a: " + "[" * 3000 + "]" * 3000 + "\n").encode(),
            "mappings/extra.yaml:1:1: yaml-syntax: the document is nested too deeply; keep "
            "mappings and sequences within 64 levels\n",
            id="nesting beyond the parser",
        ),
        pytest.param(
            ("a: " + "[" * 70 + "]" * 70 + "\n").encode(),
            "mappings/extra.yaml:1:68: yaml-syntax: the document is nested more than 64 levels "
            "deep; flatten it\n",
            id="nesting beyond the limit",
        ),
        pytest.param(
            b"\xff\xfe\x00binary",
            "mappings/extra.yaml:1:1: yaml-syntax: the file is not UTF-8 text (invalid byte at "
            "offset 0); save it as UTF-8\n",
            id="binary file",
        ),
        pytest.param(
            b"ignore: !!python/object/new:os.system\n  - ls\n",
            "mappings/extra.yaml:1:9: schema: the tag tag:yaml.org,2002:python/object/new:"
            "os.system is not allowed; remove it, because mapping files use plain YAML values "
            "only\n",
            id="tag on a sequence",
        ),
        pytest.param(
            b"ignore: !!omap []\n",
            "mappings/extra.yaml:1:9: schema: the tag tag:yaml.org,2002:omap is not allowed; "
            "remove it, because mapping files use plain YAML values only\n",
            id="tag on a sequence of pairs",
        ),
        pytest.param(
            b"ignore: [!!binary aGVsbG8=]\n",
            "mappings/extra.yaml:1:10: schema: the tag tag:yaml.org,2002:binary is not allowed; "
            "remove it, because mapping files use plain YAML values only\n",
            id="tag on a scalar",
        ),
        pytest.param(
            b"? [a, b]\n: 1\n",
            "mappings/extra.yaml:1:3: schema: a mapping key is a mapping or a sequence; use a "
            "plain name as the key\n"
            'mappings/extra.yaml:1:3: schema: unknown key "<key at line 1>" (allowed keys: '
            "action_plans, field_mappings, ignore, modules)\n",
            id="sequence as a key",
        ),
        pytest.param(
            ("root:x:0:0:" + "word " * 100 + "\n").encode(),
            "mappings/extra.yaml:1:1: schema: the document: 'root:x:0:0:word word word word word "
            "word word word word word word word word wor... (512 characters) is not of type "
            "'object'\n",
            id="long scalar document",
        ),
    ],
)
def test_hostile_file_is_a_finding(
    broken_mappings: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    contacts = broken_mappings / "contacts.yaml"
    contacts.write_text(
        contacts.read_text(encoding="utf-8").replace("field: E_mail\n", "field: Email\n"),
        encoding="utf-8",
    )
    (broken_mappings / "extra.yaml").write_bytes(content)

    status = main(["validate", "mappings"])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param(
            "''.__class__.__mro__[1]",
            [
                "'__class__' starts with an underscore, which the sandbox forbids",
                "'__mro__' starts with an underscore, which the sandbox forbids",
            ],
            id="private attributes",
        ),
        pytest.param(
            "cycler.next",
            ["name 'cycler' is not available; an expression reads only input and event"],
            id="jinja global",
        ),
        pytest.param(
            "'abc'['__class__']",
            ["'__class__' starts with an underscore, which the sandbox forbids"],
            id="private item",
        ),
        pytest.param(
            "input|attr('__class__')",
            ["'__class__' starts with an underscore, which the sandbox forbids"],
            id="private attr filter",
        ),
        pytest.param(
            "'x' * 9999999999",
            [
                "repeating a value of size 1 9999999999 times gives a size of 9999999999, over "
                "the limit of 100000"
            ],
            id="repeated string",
        ),
        pytest.param(
            "2 ** 99999999",
            ["the result of ** would have about 199999998 bits, over the limit of 100000"],
            id="huge power",
        ),
        pytest.param(
            "'%99999999d' % 1",
            ["a format width of 99999999 exceeds the limit of 100000"],
            id="format width",
        ),
        pytest.param(
            "'x'|center(999999999)",
            ["center() with a width of 999999999 exceeds the limit of 100000"],
            id="center filter width",
        ),
        pytest.param(
            "'" + "a" * 20000 + "'.replace('', 'bbbbbb')",
            ["replace() would give 140006 characters, over the limit of 100000"],
            id="replace on constants",
        ),
        pytest.param(
            "input.msisdn.translate({})",
            [
                "method translate() is not allowed; allowed methods: capitalize, casefold, "
                "center, count, endswith, find, format, get, index, "
                "isalnum, isalpha, isdecimal, isdigit, islower, isnumeric, isspace, isupper, "
                "items, join, keys, ljust, lower, lstrip, partition, removeprefix, "
                "removesuffix, replace, rfind, rjust, rpartition, rsplit, rstrip, split, "
                "startswith, strip, swapcase, title, upper, values, zfill"
            ],
            id="method outside the allowed list",
        ),
    ],
)
def test_unsafe_expression_is_a_finding(
    broken_mappings: Path,
    capsys: pytest.CaptureFixture[str],
    expression: str,
    expected: list[str],
) -> None:
    contacts = broken_mappings / "contacts.yaml"
    contacts.write_text(
        contacts.read_text(encoding="utf-8").replace("field: E_mail\n", "field: Email\n"),
        encoding="utf-8",
    )
    sim_cards = broken_mappings / "sim-cards.yaml"
    text = sim_cards.read_text(encoding="utf-8")
    sim_cards.write_text(
        text.replace("expression: input.msisdn or input.iccid", f"expression: {expression!r}"),
        encoding="utf-8",
    )

    status = main(["validate", "mappings"])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == "".join(
        f"mappings/sim-cards.yaml:27:21: unsafe-expression: {message}\n"
        for message in sorted(expected)
    )


def test_filter_outside_allowed_list(
    broken_mappings: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contacts = broken_mappings / "contacts.yaml"
    contacts.write_text(
        contacts.read_text(encoding="utf-8").replace("field: E_mail\n", "field: Email\n"),
        encoding="utf-8",
    )
    sim_cards = broken_mappings / "sim-cards.yaml"
    text = sim_cards.read_text(encoding="utf-8")
    sim_cards.write_text(
        text.replace(
            "expression: input.msisdn or input.iccid",
            'expression: "input.msisdn|slice(999999999)|list"',
        ),
        encoding="utf-8",
    )

    status = main(["validate", "mappings"])

    assert status == 1
    assert capsys.readouterr().out == (
        "mappings/sim-cards.yaml:27:21: expression-syntax: the Jinja2 expression does not "
        "compile: No filter named 'slice'.\n"
    )


def test_deeply_nested_schema_is_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    schema: dict[str, Any] = {}
    inner = schema
    for _ in range(900):
        inner["items"] = {}
        inner = inner["items"]
    (tmp_path / "deep.json").write_text(json.dumps(schema), encoding="utf-8")

    status = main(["validate", "deep.json"])

    assert status == 1
    assert capsys.readouterr().out == (
        "deep.json:1:1: invalid-json-schema: the schema is nested too deeply to check; "
        "flatten it with $defs and $ref\n"
    )


@pytest.mark.parametrize(
    ("content", "finding"),
    [
        pytest.param(
            "[" * 100_000,
            "bad.json:1:1: json-syntax: invalid JSON: the document is nested too deeply for the "
            "parser",
            id="deeply nested brackets",
        ),
        pytest.param(
            '{"maxLength": ' + "9" * 5000 + "}",
            "bad.json:1:1: json-syntax: invalid JSON: an integer has 5000 digits, more than the "
            "4300 allowed",
            id="integer of 5000 digits",
        ),
        pytest.param(
            '{"type": "' + "x" * 5000 + '"}',
            "bad.json:1:10: invalid-json-schema: not a valid JSON Schema (draft 2020-12): '"
            + "x" * 79
            + "... (5002 characters) is not valid under any of the given schemas",
            id="long value cut to 80 characters",
        ),
    ],
)
def test_hostile_schema_file_is_a_finding(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str,
    finding: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text(content, encoding="utf-8")

    status = main(["validate", "bad.json"])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == finding + "\n"


def test_stdin_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["validate", "-"])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.err == (
        "zoho-connector validate: reading standard input (-) is not supported; give the path "
        "of a mapping directory, mapping file or schema file\n"
    )
