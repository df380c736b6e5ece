"""One rule for "this process is dead" and "its entry should go".

The status page marks dead processes and deletes long-silent ones on read;
``tilestatus_purge`` deletes dead ones whenever it runs. Both ask the same
``DeathPolicy``, which differs between them only in its numbers:

- A process of this host is dead when liveness says so (its PID no longer
  runs, or was reused): that is seen directly, whatever its age.
- A process of another host cannot be seen; it counts as dead once silent
  longer than ``silence``.
- A registry entry whose messages have expired points at nothing and goes.
- An entry goes once its process is dead and silent at least ``local_after``
  seconds (the page waits PURGE_AFTER so a person sees what died; the purge
  command, asked explicitly, does not wait).

Core module: imports the standard library, ``liveness`` and ``vocabulary`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import liveness
from .vocabulary import nice_time

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
    why_dead_here: Callable[[int, float], str | None] = liveness.why_dead

    def why_dead(self, host: str, pid: int, last_seen: float, now: float) -> str | None:
        """Why the process is dead, or None while it runs or cannot be judged yet."""
        if host == self.this_host:
            return self.why_dead_here(pid, last_seen)
        if now - last_seen > self.silence:
            return f"silent for {nice_time(now - last_seen)}"
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
        if reason is None or host != self.this_host:
            return reason
        return f"{reason}, last seen {nice_time(now - last_seen)} ago"
