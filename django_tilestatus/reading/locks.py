"""Who holds which metatile lock, resolved from every process's in-flight entries.

A request holding a metatile's cache lock says so in its in-flight entry (``held``,
``lock_since``, and the lock instance's ``token``; see ``recording.inflight``); one
waiting names the lock only. The in-flight entries in the store are the
cluster's, so the holder of a lock is found whatever host it runs on:

- for the status page, ``LockState`` is what a request row shows of its lock (a
  waiter: the lock and its holder, host, PID and how long it has held it; a
  holder: how many wait for it), built by ``lock_states`` from one snapshot;
- for a waiting request, ``HolderReader`` answers ``serving.locks``'s question
  "who holds this lock, and is that process dead?" with ``Claim``s, reading the
  store at most every ``EVERY`` seconds per process, and only while some
  request waits; and judges the holder a lock records of itself (``judge``), for
  a holder whose in-flight entry was never written (killed within 200 ms of
  taking the lock).

A holder is dead by the page's one rule (``liveness.DeathPolicy``): on this host
(and PID namespace) its PID no longer runs (or was reused); on another host it has
been silent past ``HIDE_AFTER``.

Core module: imports the standard library, ``recording`` (``inflight``,
``vocabulary``), ``storage.interface`` and ``reading.liveness`` only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..recording import inflight
from ..recording.inflight import Entry
from ..recording.vocabulary import clean, phase_text
from ..storage.interface import Snapshot, StatusStore
from .liveness import DeathPolicy

#: Seconds a ``HolderReader`` reuses one read of the store.
EVERY = 0.1


def duration_text(seconds: float) -> str:
    """``120 ms`` under a second, ``2 s`` beyond."""
    seconds = max(0.0, seconds)
    return f"{round(seconds * 1000)} ms" if seconds < 0.9995 else f"{int(seconds)} s"


def split_lock(lock: str) -> tuple[str, str]:
    """``("world", "10/8/4")`` from an entry's ``lock`` (``world 10/8/4``)."""
    layer, _, metatile = lock.rpartition(" ")
    return layer, metatile


@dataclass(frozen=True)
class Holder:
    """The request holding a lock, as a waiter's row names it."""

    host: str
    pid: int
    #: Seconds it has held the lock.
    held_for: float
    #: Its phase (``inflight.PHASES``) and its process is dead.
    phase: str
    gone: bool = False

    @property
    def text(self) -> str:
        """``vm PID 4321 (rendering for 2 s)``, or ``(gone)`` for a dead process."""
        what = "gone" if self.gone else phase_text(self.phase, "", self.held_for)
        return f"{clean(self.host, 100)} PID {self.pid} ({what})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "for": round(self.held_for, 3),
            "phase": self.phase,
            "gone": self.gone,
        }


@dataclass(frozen=True)
class LockState:
    """A request's metatile lock as its row shows it."""

    layer: str
    metatile: str
    #: Unix time it began waiting (a waiter) or took the lock (a holder), and seconds since.
    since: float
    spent: float
    held: bool
    #: A waiter's: who holds the lock, when known.
    holder: Holder | None = None
    #: A holder's: how many requests wait for its lock.
    waiters: int = 0

    @property
    def name(self) -> str:
        return clean(f"metatile {self.layer} {self.metatile}", 200)

    @property
    def text(self) -> str:
        """``waiting 120 ms for metatile world 10/8/4 held by vm PID 4321 (rendering for
        2 s)``, or ``holding metatile world 10/8/4 for 2 s, 3 waiting``."""
        spent = duration_text(self.spent)
        if self.held:
            text = f"holding {self.name} for {spent}"
            return f"{text}, {self.waiters} waiting" if self.waiters else text
        text = f"waiting {spent} for {self.name}"
        if self.holder is None:
            return text + " (holder not known)"
        return f"{text} held by {self.holder.text}"

    @property
    def short_text(self) -> str:
        """What the request's own line leaves out in the terminal view: ``held by vm PID
        4321 (rendering for 2 s)``, ``holder not known`` or ``3 waiting``."""
        if self.held:
            return f"{self.waiters} waiting"
        return "holder not known" if self.holder is None else f"held by {self.holder.text}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "metatile": self.metatile,
            "since": round(self.since, 3),
            "for": round(self.spent, 3),
            "held": self.held,
            "holder": None if self.holder is None else self.holder.as_dict(),
            "waiters": self.waiters,
            "text": self.text,
        }


@dataclass(frozen=True)
class _Holding:
    host: str
    pid: int
    entry: Entry
    dead: bool


def _last_seen(snapshot: Snapshot) -> dict[tuple[str, int], float]:
    return {(log.host, log.pid): log.last_seen for log in snapshot.processes}


def _dead(
    process: tuple[str, int], seen: dict[tuple[str, int], float], policy: DeathPolicy, now: float
) -> bool:
    """Dead by the policy; a process the registry no longer holds is not judged."""
    last_seen = seen.get(process)
    if last_seen is None:
        return False
    return policy.why_dead(process[0], process[1], last_seen, now) is not None


def _entries(snapshot: Snapshot) -> Iterable[tuple[tuple[str, int], Entry]]:
    for process, raw in snapshot.in_flight.items():
        for entry in map(inflight.decode, raw):
            if entry is not None and entry.lock:
                yield process, entry


def holdings(snapshot: Snapshot, policy: DeathPolicy) -> dict[str, list[_Holding]]:
    """The requests holding each lock (``world 10/8/4``), live ones first."""
    seen = _last_seen(snapshot)
    found: dict[str, list[_Holding]] = {}
    for process, entry in _entries(snapshot):
        if entry.held:
            dead = _dead(process, seen, policy, snapshot.now)
            found.setdefault(entry.lock, []).append(_Holding(*process, entry, dead))
    for items in found.values():
        items.sort(key=lambda item: (item.dead, -(item.entry.lock_since or 0.0)))
    return found


def waiting_counts(snapshot: Snapshot) -> dict[str, int]:
    """How many requests wait for each lock."""
    counts: dict[str, int] = {}
    for _, entry in _entries(snapshot):
        if entry.phase == inflight.WAITING_LOCK and not entry.held:
            counts[entry.lock] = counts.get(entry.lock, 0) + 1
    return counts


@dataclass(frozen=True)
class LockIndex:
    """The holders and waiter counts of one snapshot's locks."""

    now: float
    holders: dict[str, list[_Holding]]
    waiters: dict[str, int]

    @classmethod
    def of(cls, snapshot: Snapshot, policy: DeathPolicy) -> LockIndex:
        return cls(snapshot.now, holdings(snapshot, policy), waiting_counts(snapshot))

    def state(
        self, lock: str, phase: str, phase_since: float, held: bool, lock_since: float | None
    ) -> LockState | None:
        """What a request row shows of its lock, or None when it neither holds nor waits."""
        if not lock:
            return None
        layer, metatile = split_lock(lock)
        if held:
            since = phase_since if lock_since is None else lock_since
            waiters = self.waiters.get(lock, 0)
            return LockState(layer, metatile, since, self.now - since, True, waiters=waiters)
        if phase != inflight.WAITING_LOCK:
            return None
        holder = None
        items = self.holders.get(lock)
        if items:
            first = items[0]
            taken = first.entry.lock_since or first.entry.since
            holder = Holder(
                first.host, first.pid, self.now - taken, first.entry.phase, gone=first.dead
            )
        return LockState(layer, metatile, phase_since, self.now - phase_since, False, holder)


# -- for waiting requests --------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A request that holds a metatile's lock, for ``serving.locks``."""

    host: str
    pid: int
    token: str
    dead: bool


def claims(found: dict[str, list[_Holding]], lock: str) -> list[Claim]:
    """The claims on ``lock`` (``world 10/8/4``) among ``holdings``."""
    return [
        Claim(item.host, item.pid, item.entry.token, item.dead)
        for item in found.get(lock, [])
        if item.entry.token
    ]


class Recorded(Protocol):
    """The holder a lock records of itself (``serving.locks.Recorded``)."""

    @property
    def token(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def namespace(self) -> int | None: ...
    @property
    def pid(self) -> int: ...
    #: Unix time it took the lock.
    @property
    def taken(self) -> float: ...


def recorded_claim(
    recorded: Recorded, policy: DeathPolicy, seen: dict[tuple[str, int], float], now: float
) -> Claim | None:
    """The claim of the holder a lock records, judged by ``policy``: where liveness sees
    it (this host, this or an unknown PID namespace), by its PID since it took the lock
    (a process started later reuses the PID); elsewhere by its silence in the registry
    since then. None where it cannot be judged (another host's process the registry
    does not hold: never taken for dead)."""
    process = (recorded.host, recorded.pid)
    if recorded.namespace is not None:
        policy = policy.with_namespaces({**policy.namespaces, process: recorded.namespace})
    if policy.judged_here(*process):
        last_event = recorded.taken
    elif process in seen:
        last_event = max(seen[process], recorded.taken)
    else:
        return None
    dead = policy.why_dead(*process, last_event, now) is not None
    return Claim(recorded.host, recorded.pid, recorded.token, dead)


class HolderReader:
    """``serving.locks``'s holder source and judge: one store read per ``EVERY`` seconds,
    shared by the process's waiting requests."""

    def __init__(
        self,
        store: Callable[[], StatusStore],
        policy: DeathPolicy,
        every: float = EVERY,
        clock: Callable[[], float] = time.time,
    ):
        self.store, self.policy, self.every, self.clock = store, policy, every, clock
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._holdings: dict[str, list[_Holding]] = {}
        self._seen: dict[tuple[str, int], float] = {}

    def _current(self) -> tuple[dict[str, list[_Holding]], dict[tuple[str, int], float]]:
        """The holdings and each registered process's last event, as last read."""
        with self._lock:
            now = self.clock()
            if now - self._read_at >= self.every:
                store = self.store()
                snapshot = store.snapshot(now, recent=0)
                self._holdings = holdings(snapshot, self._policy(store, snapshot))
                self._seen = _last_seen(snapshot)
                self._read_at = now
            return self._holdings, self._seen

    def _policy(self, store: StatusStore, snapshot: Snapshot) -> DeathPolicy:
        """The policy with the PID namespaces of this host's holders: a holder of this
        host but of another namespace (another container under one ``HOST``) is judged
        by its silence, never by this process table, so its live lock is never broken."""
        policy = self.policy
        if policy.namespace is None:
            return policy
        here = [(log.host, log.pid) for log in snapshot.processes if log.host == policy.this_host]
        return policy.with_namespaces(store.namespaces(here)) if here else policy

    def __call__(self, layer: str, metatile: str) -> Sequence[Claim]:
        return claims(self._current()[0], f"{layer} {metatile}")

    def judge(self, recorded: Recorded) -> Claim | None:
        """The claim of the holder a lock records (``recorded_claim``)."""
        _, seen = self._current()
        return recorded_claim(recorded, self.policy, seen, self.clock())
