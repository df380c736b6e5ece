"""Whether a recorded process is dead, and whether its entry should go: the one rule.

The status page marks dead processes and deletes long-silent ones on read;
``tilestatus_purge`` deletes dead ones whenever it runs; both ask the same
``DeathPolicy``, which differs between them only in its numbers:

- A process of this host and of this PID namespace is dead when liveness
  says so (its PID no longer runs, or was reused): that is seen directly,
  whatever its age. Any integer may come from Redis: an impossible PID is
  simply not running.
- A process of another host cannot be seen; it counts as dead once silent
  longer than ``silence``. So does a process of this host that recorded
  another PID namespace (another container on the same node, under one
  ``HOST``): its PID means nothing in this process table. A process whose
  namespace is unknown (recorded by an older version, or where
  ``/proc/self/ns/pid`` cannot be read) is judged by liveness, as before.
- A registry entry whose messages have expired points at nothing and goes.
- An entry goes once its process is dead and silent at least ``local_after``
  seconds (the page waits PURGE_AFTER so a person sees what died; the purge
  command, asked explicitly, does not wait).

Core module: imports the standard library, ``storage.interface`` (its PID range)
and ``recording.vocabulary`` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ..recording.vocabulary import nice_time
from ..storage.interface import MAX_PID

#: Why a local process counts as dead.
NOT_RUNNING = "no longer running"
REUSED = "PID reused by a newer process"

#: Why a process of this host is judged by silence, not liveness.
OTHER_NAMESPACE = "another PID namespace"

#: Seconds a process may seem to have started after its own last event.
#: Start times from /proc are coarse: boot time is whole seconds, and the
#: wall clock may have been stepped since boot.
START_TIME_SLACK = 2.0

_PROC = "/proc"


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


def pid_namespace() -> int | None:
    """This process's PID namespace: the inode of ``/proc/self/ns/pid``, or None where
    that cannot be read (not Linux, no ``/proc``).

    Processes of one namespace see one process table; a PID is judged only there.
    """
    try:
        return os.stat(f"{_PROC}/self/ns/pid").st_ino
    except OSError:
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


# -- the policy: dead, and when its entry goes ------------------------------

#: Why a registry entry goes although its process cannot be judged.
EXPIRED = "its messages have expired"


@dataclass(frozen=True)
class DeathPolicy:
    """Judges registry entries ``(host, pid, last_seen)`` at one moment."""

    this_host: str
    #: Seconds of silence after which another host's process counts as dead.
    silence: float
    #: Seconds a dead process stays listed before its entry goes.
    local_after: float = 0.0
    #: ``why_dead(pid, last_event)`` for processes of this host (see ``liveness``).
    why_dead_here: Callable[[int, float], str | None] = why_dead
    #: The judging process's PID namespace (``pid_namespace()``); None where unknown.
    namespace: int | None = None
    #: The PID namespace each process recorded, ``(host, pid)`` -> inode; a process
    #: missing here (an older version's) is taken to share the judging one's.
    namespaces: Mapping[tuple[str, int], int] = field(default_factory=dict, hash=False)

    def with_namespaces(self, namespaces: Mapping[tuple[str, int], int]) -> DeathPolicy:
        """This policy, knowing the PID namespaces processes recorded."""
        return replace(self, namespaces=namespaces)

    def judged_here(self, host: str, pid: int) -> bool:
        """Whether liveness judges the process: it is of this host, and of this PID
        namespace (or one of the two namespaces is unknown)."""
        if host != self.this_host:
            return False
        theirs = self.namespaces.get((host, pid))
        return theirs is None or self.namespace is None or theirs == self.namespace

    def other_namespace(self, host: str, pid: int) -> bool:
        """Whether the process is of this host but recorded another PID namespace."""
        return host == self.this_host and not self.judged_here(host, pid)

    def why_dead(self, host: str, pid: int, last_seen: float, now: float) -> str | None:
        """Why the process is dead, or None while it runs or cannot be judged yet."""
        if self.judged_here(host, pid):
            return self.why_dead_here(pid, last_seen)
        if now - last_seen > self.silence:
            silent = f"silent for {nice_time(now - last_seen)}"
            return f"{OTHER_NAMESPACE}; {silent}" if host == self.this_host else silent
        return None

    def why_delete(
        self, host: str, pid: int, last_seen: float, now: float, has_log: bool = True
    ) -> str | None:
        """Why the entry should go now, or None to keep it."""
        if not has_log:
            return EXPIRED
        if now - last_seen < self.local_after:
            return None
        reason = self.why_dead(host, pid, last_seen, now)
        if reason is None or not self.judged_here(host, pid):
            return reason
        return f"{reason}, last seen {nice_time(now - last_seen)} ago"
