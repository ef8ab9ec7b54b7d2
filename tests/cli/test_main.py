"""The `zoho-connector` entry point run as a real process."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).parents[2]
EVENT = (
    REPOSITORY / "tests" / "planning" / "golden" / "sim-updated-published-example" / "event.json"
)
ENTRY_POINT = "import sys; from engine.cli import main; sys.exit(main())"
PIPE_CAPACITY = 4096
"""Bytes the test pipe buffers; the smallest size Linux allows is one page."""
FILE_COUNT = 40


def plan_command() -> list[str]:
    return [
        sys.executable,
        "-c",
        ENTRY_POINT,
        "plan",
        "--format",
        "json",
        *[str(EVENT)] * FILE_COUNT,
    ]


def test_closed_pipe_ends_quietly() -> None:
    full_output = subprocess.run(
        plan_command(), cwd=REPOSITORY, capture_output=True, check=True
    ).stdout
    # The output must not fit in the pipe, so the process is still writing when the reader
    # closes its end, whatever the timing.
    assert len(full_output) > 2 * PIPE_CAPACITY

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_CAPACITY)
    process = subprocess.Popen(
        plan_command(), cwd=REPOSITORY, stdout=write_end, stderr=subprocess.PIPE
    )
    os.close(write_end)
    head = os.read(read_end, 100)
    os.close(read_end)
    _, stderr = process.communicate()

    assert full_output.startswith(head)
    assert stderr == b""
    assert process.returncode == 141
