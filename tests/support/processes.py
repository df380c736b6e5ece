"""Processes as the tests see them: child PIDs, and a PID that is certainly gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def children(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (Linux /proc); none if it is gone."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def dead_pid() -> int:
    """The PID of a process that ran and has exited (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(child.stdout)
