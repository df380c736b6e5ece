"""Small helpers shared by the tests."""

from __future__ import annotations

import subprocess
import sys
import time

from django_tilestatus.inflight import Request
from django_tilestatus.status import get_recent
from django_tilestatus.store import InFlightUpdate, StatusStore


def recorded_messages() -> list[str]:
    """This process's recorded messages, oldest first (flushes the queue)."""
    _, messages = get_recent()
    return [message for _, _, message in reversed(messages)]


def write_log(store: StatusStore, host: str, pid: int, *events: tuple[float, str]) -> None:
    """Record ``(seconds ago, message)`` events, oldest first, for one process."""
    now = time.time()
    store.write(host, pid, [(now - age, message) for age, message in events])


def write_busy(store: StatusStore, host: str, pid: int, path: str, seconds: float) -> None:
    """Record a request in flight on ``path`` for ``seconds``, as a process's writer does."""
    request = Request(1, path, time.time() - seconds)
    update = InFlightUpdate(set={"1": request.encode()}, oldest=request.started)
    store.write(host, pid, [], update)


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
