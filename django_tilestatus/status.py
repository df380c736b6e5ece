"""The public Python API, named after TileStache StatusServer's functions.

``get_recent()`` returns ``Status`` items that unpack as the original's
``(elapsed, pid, message)`` tuples and also carry ``host``, because PIDs of
two hosts sharing one Redis may collide.

Adapter: reads the settings (through ``runtime``); raises ``StoreUnavailable``
when the store cannot be reached.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import operator
import time
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

from . import conf
from .reading.report import pid_indent
from .recording import recorder, vocabulary
from .recording.recorder import flush_own_events
from .recording.vocabulary import nice_time
from .runtime import get_store
from .storage import StoreUnavailable


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


def update_status(msg: str) -> None:
    """Record ``msg`` for this process (queued; written within a second).

    The text is cleaned as tile paths are: one printable line, cut at
    ``vocabulary.MAX_MESSAGE_LENGTH`` characters. Does nothing when
    ``ENABLED`` is False.
    """
    current = recorder.active()
    if current is not None:
        current.record(vocabulary.clean(str(msg)))


def get_recent(now: float | None = None) -> tuple[list[Status], list[Status]]:
    """``(processes, messages)``, both youngest first.

    ``processes`` holds each process's newest message; ``messages`` every
    stored message. This process's queued events are written first, so what
    it just recorded is included. Entries that do not parse are skipped.
    Raises ``StoreUnavailable`` if the store cannot be reached.
    """
    flush_own_events()
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
    # A clock ahead of this one gives no negative ages.
    return [_new_tuple(cls, (max(0.0, now - stamp), pid, text)) for stamp, text in entries]


def delete_statuses(pid: int, host: str | None = None) -> None:
    """Delete the messages of process ``pid`` on ``host`` (default: this host)."""
    get_store().delete([(host or conf.get_config().host, int(pid))])


__all__ = [
    "Status",
    "StoreUnavailable",
    "delete_statuses",
    "get_recent",
    "get_store",
    "nice_time",
    "pid_indent",
    "update_status",
]
