"""The public Python API, named after TileStache StatusServer's functions.

``get_recent()`` returns ``Status`` items that unpack as the original's
``(elapsed, pid, message)`` tuples and also carry ``host``, because PIDs of
two hosts sharing one Redis may collide.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import math
import operator
import time
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

from . import conf, connection, events
from .recorder import existing_recorder
from .store import StatusStore


class _StatusFields(NamedTuple):
    elapsed: float
    pid: int
    message: str


class Status(_StatusFields):
    """One message: seconds since it was recorded, PID, text; ``host`` too.

    Equality and ordering are those of the ``(elapsed, pid, message)`` tuple.
    ``host`` is a class attribute of a small subclass made once per host name,
    so an item is a bare tuple: a page of 1000 processes builds 20,000 of
    them, and a dict apiece would double the garbage collector's work.
    """

    __slots__ = ()
    host: str = ""

    def __new__(cls, elapsed: float, pid: int, message: str, host: str = "") -> Status:
        return _new_tuple(_status_class(host), (elapsed, pid, message))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Status, (self.elapsed, self.pid, self.message, self.host))

    def __repr__(self) -> str:
        return (
            f"Status(elapsed={self.elapsed!r}, pid={self.pid!r}, "
            f"message={self.message!r}, host={self.host!r})"
        )


_new_tuple = tuple.__new__


@functools.lru_cache(maxsize=1024)
def _status_class(host: str) -> type[Status]:
    """The ``Status`` subclass whose items report ``host``."""
    namespace = {"__slots__": (), "host": host, "__module__": __name__}
    return cast("type[Status]", type("Status", (Status,), namespace))


def get_store() -> StatusStore:
    """A store on the process's Redis client, for the settings in force."""
    config = conf.get_config()
    return StatusStore(connection.get_client(), config.key_prefix, config.keep, config.ttl)


def update_status(msg: str) -> None:
    """Record ``msg`` for this process (queued; written within a second).

    Does nothing when ``ENABLED`` is False.
    """
    recorder = events.active()
    if recorder is not None:
        recorder.record(str(msg))


def get_recent(now: float | None = None) -> tuple[list[Status], list[Status]]:
    """``(processes, messages)``, both youngest first.

    ``processes`` holds each process's newest message; ``messages`` every
    stored message. This process's queued events are written first, so what
    it just recorded is included. Raises redis-py's errors if Redis is away.
    """
    recorder = existing_recorder()
    if recorder is not None:
        recorder.flush(timeout=1.0)
    now = time.time() if now is None else now
    processes: list[Status] = []
    messages: list[Status] = []
    with _collector_paused():
        for log in get_store().read(now=now):
            items = _statuses(now, log.pid, log.host, log.entries)
            processes.append(items[0])
            messages.extend(items)
    processes.sort(key=_elapsed)
    messages.sort(key=_elapsed)
    return processes, messages


_elapsed = operator.itemgetter(0)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a read builds its items.

    A read of 1000 processes makes some 40,000 small tuples. Every few hundred
    would start a collection, some of which scan the whole heap, to find no
    garbage: tuples of numbers and strings cannot form cycles. Measured, the
    collector doubled the time of such a read. It resumes afterwards, unless
    it was off to begin with.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _statuses(now: float, pid: int, host: str, entries: list[tuple[float, str]]) -> list[Status]:
    """``Status`` items for one process's entries."""
    cls = _status_class(host)
    return [_new_tuple(cls, (now - stamp, pid, text)) for stamp, text in entries]


def delete_statuses(pid: int, host: str | None = None) -> None:
    """Delete the messages of process ``pid`` on ``host`` (default: this host)."""
    get_store().delete([(host or conf.get_config().host, int(pid))])


#: The units of ``nice_time``: (below this many seconds, seconds per unit, unit name).
#: The original's thresholds: a unit is used from 1.5 of it on.
_TIME_UNITS = (
    (90, 1, "second"),
    (60 * 60 * 1.5, 60, "minute"),
    (24 * 60 * 60 * 1.5, 3600, "hour"),
    (7 * 24 * 60 * 60 * 1.5, 86400, "day"),
    (30 * 24 * 60 * 60 * 1.5, 604800, "week"),
    (math.inf, 2592000, "month"),
)


def nice_time(seconds: float) -> str:
    """Format a time in seconds to a string like "5 minutes", as the original.

    The count is truncated as the original's ``%d`` did; unlike the original, a
    count of 1 takes the singular ("1 minute", not "1 minutes").
    """
    if seconds < 15:
        return "moments"
    size, unit = next((size, unit) for limit, size, unit in _TIME_UNITS if seconds < limit)
    count = int(seconds / size)  # truncated, as the original's "%d"
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def pid_indent(pid: int) -> int:
    """An indentation, 0 to 31, from the MD5 of the decimal PID, as the original."""
    return int(hashlib.md5(str(pid).encode("ascii"), usedforsecurity=False).hexdigest(), 16) % 32


__all__ = [
    "Status",
    "delete_statuses",
    "get_recent",
    "nice_time",
    "pid_indent",
    "update_status",
]
