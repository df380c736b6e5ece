"""The tile requests this process is serving right now, one entry per thread.

State, not history: the message list says what happened, this table says what
is under way. A request thread only touches its own ``Request`` (a dict insert
at its start, attribute writes at each phase, a dict pop at its end), which
costs well under a microsecond and takes no lock; the recorder's writer thread
reads the table, encodes what changed and sends it in the same pipelined write
as the messages (see ``Recorder``). The writer is also the one that takes a
stack snapshot of a request that has run longer than ``BUSY_AFTER``, through
``sys._current_frames()``, so a stuck request costs its own thread nothing.

Entries are keyed by ``threading.get_ident()``. The tile view is synchronous:
gunicorn's sync and gthread workers run each request in a thread of its own,
and under an ASGI server Django runs a sync view through asgiref's
``sync_to_async`` inside a per-request ``ThreadSensitiveContext``, so each
request again has a thread of its own. A gevent worker runs every request on
the one OS thread, as greenlets: ``threading.get_ident()`` is then the greenlet's id
(gevent patches it), and the stack snapshot shows the hub's frames, not the
request's (see docs/status-page.md).

The phase functions (``cache_read_begins``/``cache_read_ends``,
``waiting_for_cache_lock``, ``cache_lock_held``, ``cache_lock_released``,
``waiting_for_mapnik_lock``, ``mapnik_lock_held``) act on the calling thread's
request and do nothing outside one, or when recording is off.

The entry is also where the request keeps what its statistics need (whether the
cache gave the body, how long the cache lock took, its status and duration): the
writer counts them when the request has ended (see ``statistics.counting``), so the request
thread does no counting of its own.

Core module: imports the standard library only.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Phases, as stored (short codes; ``vocabulary.phase_text`` words them).
STARTING = "start"
READING = "read"
WAITING_LOCK = "lock"
RENDERING = "render"
WAITING_MAPNIK = "mapnik"
PHASES = (STARTING, READING, WAITING_LOCK, RENDERING, WAITING_MAPNIK)

#: Requests of one process written to the store at most (the oldest first).
MAX_IN_FLIGHT = 32
#: Innermost frames kept in a stack snapshot, and its largest encoded size.
MAX_FRAMES = 40
MAX_STACK_BYTES = 8192
#: Longest text kept of one frame's file name, function or source line.
MAX_FRAME_TEXT = 200


#: ``time.time() - time.perf_counter()``. A request takes each of its times with one call of
#: ``perf_counter`` (its duration comes from the same readings) and tells them as unix
#: times by adding this. The writer sets it again at each send (``sync_clock``), so a
#: step of the system clock shows in what is recorded within a send.
clock_offset = time.time() - time.perf_counter()


def sync_clock() -> float:
    """Set ``clock_offset`` again (the writer, at each send); the unix time now."""
    global clock_offset
    now = time.time()
    clock_offset = now - time.perf_counter()
    return now


def wall(reading: float | None = None) -> float:
    """The unix time of a ``perf_counter`` reading (None: now), as requests tell it."""
    return (time.perf_counter() if reading is None else reading) + clock_offset


class Request:
    """One tile request under way; written by its own thread, read by the writer.

    What every request starts with is a class default (a request's own value
    shadows it once set), so entering a request, done on every tile request,
    sets four attributes, not sixteen. ``threading.get_ident`` is looked up
    at each call, so gevent's patch applies even to a module imported first.
    """

    #: The phase (see ``PHASES``), and since when (``time.time()``).
    phase = STARTING
    #: The metatile whose cache lock the request waits for or holds: ``<layer> z/x/y``.
    lock = ""
    locked = False
    #: While ``locked``: when the lock was taken (``time.time()``), and what identifies
    #: that instance of the lock (``serving.locks``: a lock directory's inode and change
    #: time, a Redis or Memcache lock key's value), so a waiter breaks only the lock
    #: a dead holder took, never a later one.
    lock_since = 0.0
    lock_token = ""
    #: Locks of dead holders this request broke while waiting (for the statistics).
    locks_broken = 0
    #: The stack snapshot, taken once by the writer (``Frame`` tuples, innermost last).
    stack: list[list[Any]] | None = None
    #: Bumped by the request's own thread at each change (after the change), so the
    #: writer sends only what changed and never misses a change it half read.
    version = 0
    #: For the statistics: the cache gave the body; seconds spent waiting for its lock.
    from_cache = False
    lock_wait = 0.0
    #: How it ended, set by its own thread before it leaves the table: the HTTP
    #: status (None: not answered, e.g. aborted), its seconds and when it ended.
    status: int | None = None
    seconds = 0.0
    ended = 0.0
    #: How it ended, for the recorder (``SERVED``, ``FAILED``, ``ABORTED``), and its
    #: closing message when that is not ``Finished`` (an ``Error``).
    outcome = ""
    closing: str | None = None
    #: "" for a request; ``"seed"`` for a tile a seeding job renders (counted apart).
    source = ""

    def __init__(self, ident: int, path: str, started: float):
        self.ident = ident
        self.path = path
        self.started = started
        self.since = started

    def set_phase(self, phase: str, lock: str | None = None) -> None:
        self.phase = phase
        self.since = time.perf_counter() + clock_offset
        if lock is not None:
            self.lock = lock
        self.version += 1

    def encode(self) -> str:
        """The compact JSON the store keeps for this request (done by the writer)."""
        value: dict[str, Any] = {
            "path": self.path,
            "started": round(self.started, 3),
            "phase": self.phase,
            "since": round(self.since, 3),
        }
        if self.lock:
            value["lock"] = self.lock
            if self.locked:
                value["held"] = True
                value["lock_since"] = round(self.lock_since, 3)
                if self.lock_token:
                    value["token"] = self.lock_token
        thread = thread_name(self.ident)
        if thread:
            value["thread"] = thread
        if self.status is not None:
            # Ended, and put back at exit as what its process died on: already counted.
            value["counted"] = True
        if self.source:
            value["source"] = self.source
        if self.stack is not None:
            value["stack"] = self.stack
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def thread_name(ident: int) -> str:
    """The name of the thread ``ident`` (``ThreadPoolExecutor-0_3``, ``MainThread``...), or
    "" once it has gone; looked up by the writer, never on the request path."""
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name[:MAX_FRAME_TEXT]
    return ""


#: The process's requests under way, by thread id. A plain dict: one thread
#: inserts and pops its own key, the writer copies it (atomic under the GIL).
_table: dict[int, Request] = {}


#: ``object.__new__``: a request made by ``begin`` skips ``Request.__init__``'s call (a
#: Python frame costs a warm tile more than the four attributes it sets).
_new = object.__new__


def begin(path: str, now: float) -> Request:
    """Enter the calling thread's request, started at ``now``, in the table (its path as
    messages show it)."""
    request: Request = _new(Request)
    request.ident = ident = threading.get_ident()  # what Request.__init__ sets, inline
    request.path = path
    request.started = request.since = now
    _table[ident] = request
    return request


def end(request: Request) -> None:
    """Take the request out of the table (answered, failed or aborted)."""
    ident = request.ident
    if _table.get(ident) is request:
        del _table[ident]


def restore(request: Request) -> None:
    """Put an ended request back, at exit, as what its process died on."""
    _table.setdefault(request.ident, request)


def current() -> Request | None:
    """The calling thread's request, or None outside a recorded tile request."""
    return _table.get(threading.get_ident())


def requests() -> list[Request]:
    """The requests under way, oldest first (a copy)."""
    return sorted(_table.copy().values(), key=lambda request: request.started)


# -- phases, called from the cache wrapper and the TileStache compatibility module --


def cache_read_begins() -> Request | None:
    """The cache is read for the calling thread's request (returned, for ``cache_read_ends``)."""
    request = _table.get(threading.get_ident())
    if request is not None and not request.locked:  # set_phase(READING), inline: every tile
        request.phase = READING
        request.since = time.perf_counter() + clock_offset
        request.version += 1
    return request


def cache_read_ends(request: Request, found: bool) -> None:
    """The cache gave the tile (``found``), or had none: next comes the cache lock, or
    rendering straight away."""
    if found:
        request.from_cache = True
    elif not request.locked:
        request.set_phase(RENDERING)


def waiting_for_cache_lock(layer: str, zoom: int, column: int, row: int) -> Request | None:
    """Waiting for the cache lock of the metatile whose corner is ``zoom/column/row``
    (the request is returned, for ``cache_lock_held``)."""
    request = current()
    if request is not None:
        request.set_phase(WAITING_LOCK, f"{layer} {zoom}/{column}/{row}")
    return request


def cache_lock_held(request: Request, waited: float, token: str = "") -> None:
    """The lock is held after ``waited`` seconds: TileStache reads the cache once more,
    then renders. ``token`` identifies the lock's instance (see ``Request.lock_token``)."""
    request.lock_wait += waited
    request.lock_since = wall()
    request.lock_token = token
    request.locked = True
    request.set_phase(RENDERING)


def cache_lock_released() -> None:
    request = current()
    if request is not None and request.locked:
        request.locked = False
        request.version += 1


def waiting_for_mapnik_lock() -> None:
    """For the TileStache compatibility module: TileStache's global Mapnik lock is awaited."""
    request = current()
    if request is not None:
        request.set_phase(WAITING_MAPNIK)


def mapnik_lock_held() -> None:
    """For the TileStache compatibility module: the Mapnik lock is held, rendering goes on."""
    request = current()
    if request is not None:
        request.set_phase(RENDERING)


class MapnikLockPhases:
    """The observer of TileStache's global Mapnik lock (``tilestache.set_mapnik_lock_observer``):
    the request under way shows the wait as its phase."""

    def waiting(self) -> None:
        waiting_for_mapnik_lock()

    def acquired(self, seconds: float) -> None:
        mapnik_lock_held()


# -- stack snapshots, taken by the writer thread ------------------------------


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FRAME_TEXT else text[:MAX_FRAME_TEXT] + "..."


def capture_stack(ident: int) -> list[list[Any]] | None:
    """The stack of thread ``ident``: ``[file, line, function, source]`` per frame,
    innermost last, at most ``MAX_FRAMES`` frames and ``MAX_STACK_BYTES`` encoded.

    No local variables are read. None when the thread has gone.
    """
    frame = sys._current_frames().get(ident)
    frames: list[list[Any]] = []
    while frame is not None and len(frames) < MAX_FRAMES:
        code = frame.f_code
        line = frame.f_lineno or 0
        source = linecache.getline(code.co_filename, line).strip()
        frames.append([_cut(code.co_filename), line, _cut(code.co_name), _cut(source)])
        frame = frame.f_back
    del frame
    if not frames:
        return None
    frames.reverse()
    while len(frames) > 1 and len(json.dumps(frames, ensure_ascii=False)) > MAX_STACK_BYTES:
        del frames[0]  # drop the outermost: the innermost say where it is stuck
    return frames


def _after_fork_in_child() -> None:
    # The parent's requests are the parent's.
    _table.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- reading back -------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str
    source: str


class Stack:
    """A stack snapshot read back: its frames, innermost last, parsed when first asked
    for. A page shows few of the stacks it reads (100 busy processes of 32 requests
    hold 26 MB of them), so the others are never parsed."""

    __slots__ = ("_frames", "_raw")

    def __init__(self, raw: str | list[Any] | tuple[Frame, ...]):
        #: The stored JSON array (text, or already parsed), until parsed.
        self._raw: str | list[Any] | None = None
        self._frames: tuple[Frame, ...] | None = None
        if isinstance(raw, tuple):
            self._frames = raw
        else:
            self._raw = raw

    @property
    def frames(self) -> tuple[Frame, ...]:
        if self._frames is None:
            value: Any = self._raw
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except (ValueError, RecursionError):
                    value = None
            self._frames = _frames(value) or ()
            self._raw = None
        return self._frames

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stack) and self.frames == other.frames

    def __hash__(self) -> int:
        return hash(self.frames)

    def __repr__(self) -> str:
        return f"Stack({self.frames!r})"


@dataclass(frozen=True)
class Entry:
    """One in-flight request as read back from the store."""

    path: str
    started: float
    phase: str
    since: float
    lock: str = ""
    stack: Stack | None = None
    #: The name of the thread serving it, to tell a process's requests apart.
    thread: str = ""
    #: Already counted in the statistics (an aborted request its process died on).
    counted: bool = False
    #: It holds the cache lock of ``lock``, since ``lock_since``; ``token`` names the
    #: lock's instance (see ``Request.lock_token``).
    held: bool = False
    lock_since: float | None = None
    token: str = ""
    #: ``"seed"`` for a tile of a seeding job (counted apart from traffic).
    source: str = ""


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _frames(value: Any) -> tuple[Frame, ...] | None:
    if not isinstance(value, list):
        return None
    frames = []
    for item in value[-MAX_FRAMES:]:
        if (
            isinstance(item, list)
            and len(item) == 4
            and isinstance(item[0], str)
            and isinstance(item[1], int)
            and isinstance(item[2], str)
            and isinstance(item[3], str)
        ):
            frames.append(Frame(item[0], item[1], item[2], item[3]))
    return tuple(frames)


#: What ``Request.encode`` writes before a stack, always its last member.
_STACK_MEMBER = ',"stack":['


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # deep nesting: not ours
        return None


def decode(raw: Any) -> Entry | None:
    """An ``Entry`` from what the store holds, or None if it is not one of ours.

    The stack, which ``Request.encode`` writes last, is cut off unparsed (``Stack``
    parses it when it is shown); a value laid out otherwise is parsed whole.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(raw, str) or len(raw) > 4 * MAX_STACK_BYTES:
        return None
    stack: Any = None
    value = None
    cut = raw.rfind(_STACK_MEMBER)
    if cut > 0 and raw.endswith("]}"):
        # Outside a JSON string a '"' is never escaped: the member found is structural.
        value = _loads(raw[:cut] + "}")
        stack = raw[cut + len(_STACK_MEMBER) - 1 : -1]
    if not isinstance(value, dict):
        value = _loads(raw)
        if not isinstance(value, dict):
            return None
        stack = value.get("stack")
        if not isinstance(stack, list):
            stack = None
    path, phase, lock = value.get("path"), value.get("phase"), value.get("lock", "")
    started, since = _finite(value.get("started")), _finite(value.get("since"))
    if not isinstance(path, str) or started is None:
        return None
    return Entry(
        path=path,
        started=started,
        phase=phase if phase in PHASES else STARTING,
        since=started if since is None else since,
        lock=lock if isinstance(lock, str) else "",
        stack=None if stack is None else Stack(stack),
        thread=thread if isinstance(thread := value.get("thread", ""), str) else "",
        counted=value.get("counted") is True,
        held=value.get("held") is True and isinstance(lock, str) and bool(lock),
        lock_since=_finite(value.get("lock_since")),
        token=token if isinstance(token := value.get("token", ""), str) else "",
        source=source if isinstance(source := value.get("source", ""), str) else "",
    )
