"""Liveness of local PIDs: a PID that no longer runs, or that was reused, is dead."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from django_tilestatus.reading import liveness

from .support import wait_until
from .support.processes import dead_pid

linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live child process, ended after the test."""
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as child:
        try:
            yield child
        finally:
            child.kill()


def test_this_process_is_alive_for_what_it_recorded() -> None:
    assert liveness.is_running(os.getpid())
    assert liveness.why_dead(os.getpid(), last_event=time.time()) is None


@linux_only
def test_statuses_left_under_this_pid_before_this_process_started_are_dead() -> None:
    started = liveness.started_at(os.getpid())
    assert started is not None and started <= time.time()
    assert liveness.why_dead(os.getpid(), last_event=started) is None
    assert liveness.why_dead(os.getpid(), last_event=started - 3600) == liveness.REUSED


def test_a_pid_that_exited_is_not_running() -> None:
    pid = dead_pid()
    assert not liveness.is_running(pid)
    assert liveness.why_dead(pid, time.time()) == liveness.NOT_RUNNING


def test_non_positive_pids_are_never_running() -> None:
    # os.kill(0, ...) and negative PIDs address process groups, not a process.
    assert not liveness.is_running(0)
    assert not liveness.is_running(-1)


def test_a_running_process_that_recorded_after_it_started_is_alive(
    sleeper: subprocess.Popen[bytes],
) -> None:
    assert liveness.why_dead(sleeper.pid, time.time()) is None


@linux_only
def test_a_pid_running_a_process_newer_than_its_last_event_was_reused(
    sleeper: subprocess.Popen[bytes],
) -> None:
    started = liveness.started_at(sleeper.pid)
    assert started is not None and abs(started - time.time()) < 60
    assert liveness.why_dead(sleeper.pid, last_event=started - 3600) == liveness.REUSED


@linux_only
def test_an_unreaped_child_counts_as_not_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_until(lambda: not liveness.is_running(child.pid), 30, interval=0.05)
        # Exited but not yet waited for: a zombie, which still answers os.kill(pid, 0).
        os.kill(child.pid, 0)
        assert not liveness.is_running(child.pid)
    finally:
        child.wait(timeout=30)


def test_without_start_times_only_the_pid_is_checked(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(liveness, "_PROC", "/nonexistent")
    assert liveness.started_at(sleeper.pid) is None
    assert liveness.why_dead(sleeper.pid, last_event=0.0) is None
    assert liveness.why_dead(dead_pid(), last_event=0.0) == liveness.NOT_RUNNING
