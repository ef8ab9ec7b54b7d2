"""The "add a Contacts field" worked example of the mapping language guide, applied as written."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from engine.cli import main

REPOSITORY = Path(__file__).parents[2]
GUIDE = REPOSITORY / "docs" / "mapping-language.md"
EVENT = (
    REPOSITORY / "tests" / "planning" / "golden" / "sim-updated-published-example" / "event.json"
)
SECTION_TITLE = "## Worked example: add a Contacts field"
CODE_BLOCK = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
FIELD_INDENT = " " * 6
"""Indentation of a Contacts field in crm-modules.yaml and of a list item in contacts.yaml."""


def example_blocks() -> list[tuple[str, str]]:
    """Return (language, text) of each code block of the worked example, without the indentation
    of the list item that contains it."""
    guide = GUIDE.read_text(encoding="utf-8")
    start = guide.index(SECTION_TITLE)
    end = guide.index("\n## ", start + len(SECTION_TITLE))
    blocks = CODE_BLOCK.findall(guide[start:end])
    return [(language, textwrap.dedent(text)) for _, language, text in blocks]


def apply_example(directory: Path, *, typo: bool) -> None:
    """Edit a copy of mappings/ following steps 1 and 2 of the example, with the step 3 typo when
    `typo` is set."""
    (_, module_block), (_, field_block), *_ = example_blocks()
    field_definition = module_block.strip().splitlines()[-1].strip()
    modules_file = directory / "crm-modules.yaml"
    modules_text = modules_file.read_text(encoding="utf-8")
    contacts_fields = "  Contacts:\n    fields:\n"
    assert modules_text.count(contacts_fields) == 1
    modules_file.write_text(
        modules_text.replace(
            contacts_fields, f"{contacts_fields}{FIELD_INDENT}{field_definition}\n"
        ),
        encoding="utf-8",
    )

    field_entry = textwrap.indent(textwrap.dedent(field_block), FIELD_INDENT)
    if typo:
        field_entry = field_entry.replace("source: time_zone_name", "source: time_zone")
    contacts_file = directory / "contacts.yaml"
    contacts_file.write_text(
        contacts_file.read_text(encoding="utf-8") + field_entry, encoding="utf-8"
    )


@pytest.fixture
def example_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a copy of the shipped mappings in a working directory of its own."""
    shutil.copytree(REPOSITORY / "mappings", tmp_path / "mappings")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "mappings"


def test_example_has_four_blocks() -> None:
    assert [language for language, _ in example_blocks()] == ["yaml", "yaml", "console", "console"]


def test_example_validates(example_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apply_example(example_copy, typo=False)

    status = main(["validate", "mappings"])

    assert status == 0, capsys.readouterr()


def test_example_plan_shows_field(example_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apply_example(example_copy, typo=False)
    _, plan_block = example_blocks()[3]
    expected_line = plan_block.strip("\n").splitlines()[-1]

    status = main(["plan", str(EVENT), "--mappings", "mappings"])

    assert status == 0
    assert expected_line in capsys.readouterr().out.splitlines()


def test_example_typo_output(example_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apply_example(example_copy, typo=True)
    _, validate_block = example_blocks()[2]
    command, expected_output = validate_block.strip("\n").splitlines()

    status = main(["validate", "mappings"])

    assert command == "$ zoho-connector validate"
    assert status == 1
    assert capsys.readouterr().out == f"{expected_output}\n"
