"""The linters that CI runs through this suite: `ruff check`, `ruff format --check` and `mypy`.

Their settings are in pyproject.toml.

They run as subprocesses from the virtual environment of the running Python, so the README's
test command checks lint and types too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ruff", "check", "."], id="ruff check"),
        pytest.param(["ruff", "format", "--check", "."], id="ruff format"),
        pytest.param(["mypy"], id="mypy"),
    ],
)
def test_tool_passes(command: list[str]) -> None:
    executable = BIN / command[0]
    if not executable.is_file():
        pytest.skip(f"{command[0]} is not installed in {BIN}: pip install -e '.[dev]'")

    finished = subprocess.run(
        [str(executable), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, f"{' '.join(command)} failed:\n{output}"
