"""`zoho-connector validate` through the command-line entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

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
