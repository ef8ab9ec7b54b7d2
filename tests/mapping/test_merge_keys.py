"""YAML merge keys (`<<`) in mapping files: an explicit key overrides a merged one silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.mapping.documents import load_yaml

CASES = [
    pytest.param(
        "base: &base {input: a, write: x}\nstep:\n  <<: *base\n  input: b\n",
        {"input": "b", "write": "x"},
        id="explicit key overrides merged key",
    ),
    pytest.param(
        "a: &a {input: a}\nb: &b {write: y}\nstep:\n  <<: [*a, *b]\n",
        {"input": "a", "write": "y"},
        id="list of merged mappings",
    ),
    pytest.param(
        "base: &base {input: a}\n"
        "one: &one\n  <<: *base\n  input: b\n"
        "step:\n  <<: *one\n  write: z\n",
        {"input": "b", "write": "z"},
        id="alias of a merged mapping",
    ),
]


@pytest.mark.parametrize(("text", "expected_step"), CASES)
def test_merge_key_follows_yaml_rules(
    tmp_path: Path, text: str, expected_step: dict[str, str]
) -> None:
    path = tmp_path / "plans.yaml"
    path.write_text(text, encoding="utf-8")

    document, findings = load_yaml(path, "plans.yaml")

    assert findings == []
    assert document is not None
    assert document.data["step"] == expected_step


def test_explicit_key_twice_still_reported(tmp_path: Path) -> None:
    path = tmp_path / "plans.yaml"
    path.write_text("base: &base {input: a}\nstep:\n  <<: *base\n  write: x\n  write: y\n")

    _, findings = load_yaml(path, "plans.yaml")

    assert [(finding.line, finding.kind) for finding in findings] == [(5, "duplicate-key")]
