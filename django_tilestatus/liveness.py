"""Whether a process on this host that recorded statuses still runs.

Shared by the status page (which marks such a process "gone") and
``tilestatus_purge`` (which deletes it), through ``policy``. Only processes of
this host can be judged; a process of another host is judged by its silence
alone. Any integer may come from Redis: an impossible PID is simply not running.

Core module: imports the standard library only.
"""

from __future__ import annotations

import os

#: Why a local process counts as dead.
NOT_RUNNING = "no longer running"
REUSED = "PID reused by a newer process"

#: Seconds a process may seem to have started after its own last event.
#: Start times from /proc are coarse: boot time is whole seconds, and the
#: wall clock may have been stepped since boot.
START_TIME_SLACK = 2.0

_PROC = "/proc"
#: The largest value a PID can have (a C ``pid_t``); ``os.kill`` overflows beyond.
MAX_PID = 2**31 - 1


def is_running(pid: int) -> bool:
    """True while some process (not a zombie) has this PID.

    A process of another user is running too: signalling it is refused
    (PermissionError), which proves it exists.
    """
    if not 0 < pid <= MAX_PID:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    # An exited child not yet reaped by its parent still answers signals.
    return fields is None or fields[0] not in ("Z", "X")


def started_at(pid: int) -> float | None:
    """Unix time the process ``pid`` started, or None where that cannot be read.

    Linux only: field 22 of ``/proc/<pid>/stat`` (clock ticks since boot)
    plus ``btime`` of ``/proc/stat``.
    """
    if not 0 < pid <= MAX_PID:
        return None
    fields = _stat_fields(pid)
    boot = _boot_time()
    if fields is None or boot is None or len(fields) < 20:
        return None
    try:
        ticks = int(fields[19])
        per_second = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return None
    return boot + ticks / per_second


def why_dead(pid: int, last_event: float) -> str | None:
    """Why the local process that recorded ``last_event`` (unix time) is dead, or None.

    Dead means its PID no longer runs, or runs a process that started after
    that event, so the PID was reused; this process too, for statuses its PID
    left before it started. Where start times cannot be read, only the first
    is checked.
    """
    if not is_running(pid):
        return NOT_RUNNING
    start = started_at(pid)
    if start is not None and start > last_event + START_TIME_SLACK:
        return REUSED
    return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, from field 3 (state)."""
    try:
        with open(f"{_PROC}/{int(pid)}/stat", "rb") as stat:
            raw = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and ")".
    _, paren, rest = raw.rpartition(")")
    return rest.split() if paren else None


def _boot_time() -> float | None:
    try:
        with open(f"{_PROC}/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
