"""What the app needs from wherever the status log lives: the storage seam.

``StatusStore`` is the interface every backend satisfies (today one:
``redis_store.RedisStore``); the frozen data classes are what crosses it, so
the recorder, the report, the statistics and the commands never see a Redis
reply. The statistics' own (``Deltas`` written, ``StatTotals`` and
``StatMinutes`` read) are defined with the statistics (``counting``,
``schema``) and only named here. ``StoreUnavailable`` is the one error a
caller handles: a backend turns its own errors into it.

Adding a backend is a class satisfying ``StatusStore`` and its registration in
``runtime.get_store``.

Core module: imports the standard library and ``statistics`` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..statistics.counting import Deltas
from ..statistics.schema import StatMinutes, StatTotals

__all__ = [
    "MAX_BUSY_READ",
    "MAX_PID",
    "BatchNumber",
    "Events",
    "Head",
    "InFlightUpdate",
    "ProcessLog",
    "Registry",
    "Snapshot",
    "StatMinutes",
    "StatTotals",
    "StatusStore",
    "StoreRejected",
    "StoreUnavailable",
]

#: The largest value a PID can have (a C ``pid_t``): a stored process naming a larger
#: one names no process (and ``os.kill`` would overflow on it).
MAX_PID = 2**31 - 1

#: Events of one process, oldest first: ``(unix time, message)``.
Events = Sequence[tuple[float, str]]

#: Busy processes whose in-flight requests one page read takes at most (the
#: oldest requests first): more than a page lists (``report.MAX_PROCESS_ROWS``).
MAX_BUSY_READ = 200


class StoreUnavailable(Exception):  # noqa: N818 - named for what happened, as ImproperlyConfigured
    """The status store cannot be reached, or refused what was asked.

    The text says why in words fit for a log: redis-py's own texts may quote
    the failed command, whose arguments are tile paths (user input).
    """


class StoreRejected(StoreUnavailable):
    """The store will never take this write as it is (it does not run what the write
    needs, or the write is malformed): sending it again cannot help, so it is dropped."""


@dataclass(frozen=True)
class BatchNumber:
    """Which batch of which writer a write is, so that sending it twice applies it once.

    A writer numbers its batches from 1, in order, and sends a batch whose reply it
    did not get again with the same number before any later one; the store applies
    a batch only if that writer's last applied number is lower. ``writer`` is random
    per writer: a new process that reuses a PID starts its own numbering.
    """

    writer: str
    number: int


@dataclass(frozen=True)
class ProcessLog:
    """What the store holds for one process."""

    host: str
    pid: int
    last_seen: float
    #: ``(unix time, message)``, newest first; empty where the list was not read.
    entries: list[tuple[float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Registry:
    """The registry as it is: parsed entries, youngest first, and what did not parse."""

    entries: list[tuple[str, int, float]]
    #: Members that name no process, as Redis returned them (to report and remove).
    malformed: list[Any] = field(default_factory=list)
    #: 1 when the registry is a key of another type (none of it could be read), else 0.
    skipped: int = 0


@dataclass(frozen=True)
class Snapshot:
    """One bounded read for the status page (see ``StatusStore.snapshot``)."""

    now: float
    #: Every process seen within TTL, youngest first; ``entries`` filled for those read.
    processes: list[ProcessLog]
    #: Registry members that did not parse, found (and removed) on the way.
    malformed: int = 0
    #: The in-flight hashes of the busy processes read: ``(host, pid)`` -> raw values.
    in_flight: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    #: Processes in the busy set, read or not.
    busy_total: int = 0
    #: What the read skipped beside ``malformed``: keys of another type than the app
    #: writes, busy members and messages that do not parse.
    skipped: int = 0


@dataclass(frozen=True)
class Head:
    """A process's newest message and counts (see ``StatusStore.heads``)."""

    newest: tuple[float, str] | None = None
    served: int = 0
    failed: int = 0
    #: Entries that could not be read (a key of another type, a message that does not
    #: parse).
    skipped: int = 0


@dataclass(frozen=True)
class InFlightUpdate:
    """What changed in a process's in-flight requests since the writer's last send."""

    #: Hash fields (thread ids) to set, with their encoded requests.
    set: dict[str, str] = field(default_factory=dict)
    #: Fields whose requests have ended.
    delete: list[str] = field(default_factory=list)
    #: Start of the oldest request still in flight; None when none is.
    oldest: float | None = None
    #: Requests served and failed since the last send.
    served: int = 0
    failed: int = 0
    #: Set while requests stay in flight a long time: keep every key alive, seen now.
    touch: float | None = None


class StatusStore(Protocol):
    """What the app needs from wherever the status log lives."""

    keep: int
    ttl: int

    def write(
        self,
        host: str,
        pid: int,
        events: Events,
        in_flight: InFlightUpdate | None = None,
        stats: Deltas | None = None,
        batch: BatchNumber | None = None,
    ) -> bool:
        """Append events (oldest first) for one process, update its in-flight requests and
        add its statistics, all or nothing; False if ``batch`` was applied already (then
        nothing changed)."""

    def announce(self, host: str, pid: int, namespace: int | None) -> None:
        """Record the PID namespace of one process (None: unknown, and any earlier record
        is cleared). It outlives the process's messages by as long again, provided
        the writer announces again at least every ``ttl / 2`` seconds while it writes."""

    def namespaces(self, processes: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The PID namespace each ``(host, pid)`` announced, where known."""

    def stat_totals(self) -> StatTotals:
        """The cumulative statistics of every process (for counters)."""

    def stat_minutes(self, now: float, minutes: int) -> StatMinutes:
        """The statistics of each of the last ``minutes`` minutes, and their slowest tiles."""

    def snapshot(self, now: float, *, recent: int, host: str | None = None) -> Snapshot:
        """Every registered process; the lists of the most recent; busy ones (bounded)."""

    def heads(self, processes: Sequence[tuple[str, int]]) -> list[Head]:
        """The newest message and the counts of each ``(host, pid)``."""

    def read(self, now: float | None = None) -> list[ProcessLog]:
        """Every live process with all its messages."""

    def registry(self) -> Registry:
        """Every registry entry, changing nothing."""

    def have_logs(self, processes: Sequence[tuple[str, int]]) -> list[bool]:
        """Whether each ``(host, pid)`` still has messages."""

    def delete(self, processes: Iterable[tuple[str, int]], malformed: Iterable[Any] = ()) -> int:
        """Delete processes' messages and registry entries, and malformed members."""

    def delete_quietly(self, processes: Iterable[tuple[str, int]]) -> None:
        """``delete`` as clean-up on a read: a refusal is logged once, not raised."""

    def claim_death(self, host: str, pid: int) -> bool:
        """True for the first caller only: that one counts what the process died on."""

    def in_flight_of(
        self, processes: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], list[Any]]:
        """The raw in-flight values of those of ``processes`` that have any."""
