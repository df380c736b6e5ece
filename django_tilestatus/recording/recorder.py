"""The per-process background writer that keeps recording off the request path.

Recording only appends to an in-memory queue, which costs well under a
microsecond. A daemon thread, started lazily in each process (so after a
gunicorn fork), wakes on a timer and sends whatever has gathered as one
write (one round trip). Order is kept; when Redis is away the queue is bounded by
dropping the oldest events (and counting them), a warning is logged once per
outage, and sending resumes by itself.

Each batch is numbered (``BatchNumber``: a random name of this writer and a count),
and the store applies a batch whole and once: a send that failed, perhaps after
Redis applied it (a reply lost to a timeout), is held aside and sent again alone,
under the same number, before anything newer; the store skips it if it had it.
So nothing is counted twice and, while the writer lives, nothing is lost but
what the bounded queue drops. A batch the store will never take (``StoreRejected``)
is dropped and logged, not sent forever. At a clean exit the process records
``Destroyed`` and flushes.

A queued event is ``(time, message)``, except a tile request's ``Started`` and
its closing ``Finished``/``Error``: the request appends its in-flight entry
(``Started``) and ``(time, entry)`` (the closing), and the writer words them
(``vocabulary``) only for the newest events, the ones the store keeps (a busy
process queues hundreds of requests between sends and the store keeps 20).

The same write carries the process's in-flight requests (``inflight``): on
each wake the writer compares the table with what it last sent and sends only
what changed (one hash field per request thread, the process's place in the
busy set, and how many requests were served and failed since), and takes the
stack of any request past ``busy_after`` seconds once. A request that ended
by an exception that is not an ``Exception`` (``SystemExit`` from gunicorn's
timeout, ``KeyboardInterrupt``) is put back at exit, so the page says the
process died busy on it; a clean exit with nothing in flight clears them.

Each process has at most one recorder, made on first use by the factory an
adapter installed (``install_factory``; the Django app installs one built from
its settings). Without a factory, or when the factory returns None (recording
disabled), ``active()`` is None and nothing is recorded.

Before its first write, and again every TTL/2 while it writes, the writer
announces the process's PID namespace, where it is known (``StatusStore.announce``, its own round
trip, never on a request's path), so readers in another namespace on the same
host judge the process by silence rather than by a PID they cannot see.

Each recorder also holds its process's tile statistics (``statistics.counting``): at each send
the writer counts the requests that ended since the last one (from what each
noted on its in-flight entry, labelled by the ``tile_labels`` it was given) and
adds the deltas to the same pipeline as the events and the in-flight changes,
with the count of dropped events.

Core module: imports the standard library, ``inflight``, ``statistics`` (``counting``,
``schema``), ``storage.interface`` and ``vocabulary`` only.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import overload

from ..statistics.counting import Deltas, TileStats
from ..statistics.schema import NO_ZOOM, OTHER_LAYER
from ..storage.interface import (
    BatchNumber,
    InFlightUpdate,
    StatusStore,
    StoreRejected,
    StoreUnavailable,
)
from . import inflight, vocabulary
from .inflight import Request

logger = logging.getLogger(__name__)

#: Seconds between the writer's sends. Waking on a timer rather than per
#: event keeps thread switches off the request path. Each send costs the
#: worker some 0.5-1 ms of CPU whatever its size: every 50 ms that was ~2% of
#: a busy worker, every 200 ms it is under 1%, and events still show well
#: within a second.
INTERVAL = 0.2
#: Seconds between attempts while Redis is unreachable.
RETRY_INTERVAL = 1.0
#: Events held in memory at most while Redis is away (oldest dropped first): the bound
#: is kept as each request ends, so the ``Started`` of requests in flight may pass it.
MAX_QUEUE = 10_000
#: Seconds a clean exit waits at most to flush.
EXIT_TIMEOUT = 2.0
#: A request aborted (``SystemExit``, ``KeyboardInterrupt``) this many seconds or
#: less before a clean exit is taken as what ended the process.
ABORT_GRACE = 10.0
#: How a request ended, as ``end_request`` is told.
SERVED, FAILED, ABORTED = "served", "failed", "aborted"
#: The status an aborted request is counted with: a server error, as the client sees it.
ABORTED_STATUS = 500


class Recorder:
    """Queues one process's events and writes them from a background thread."""

    def __init__(
        self,
        store_factory: Callable[[], StatusStore],
        host: str,
        pid: int,
        interval: float = INTERVAL,
        max_queue: int | None = None,
        busy_after: float = 10.0,
        tile_labels: Callable[[str], tuple[str, int]] | None = None,
        namespace: int | None = None,
    ):
        self.host = host
        self.pid = pid
        #: The process's PID namespace (``liveness.pid_namespace()``); None where unknown.
        self.namespace = namespace
        #: When the namespace was last announced (None: not yet).
        self._announced: float | None = None
        self.interval = interval
        # Read here, not at import, so a process can tune the module's bound.
        self.max_queue = MAX_QUEUE if max_queue is None else max_queue
        #: Events lost because the queue was full while Redis was away.
        self.dropped = 0
        self._dropped_written = 0
        #: Tile statistics counted since the last send (see ``statistics.counting``).
        self.stats = TileStats()
        #: ``(layer, zoom)`` labels of a request's path (default: one label for all).
        self.tile_labels = tile_labels or _no_labels
        self.created = False
        #: Told to stop (SIGTERM): ``Destroyed`` follows its last request in flight.
        self.terminating = False
        #: ``Destroyed`` was recorded (see ``say_destroyed``).
        self.destroyed = False
        self._destroy_lock = threading.Lock()
        self._store_factory = store_factory
        #: Events, oldest first: ``(time, message)``, a request (its ``Started``) or
        #: ``(time, request)`` (its closing message); see ``event_of``.
        self._queue: deque[Queued] = deque()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._outage = False
        #: Seconds a request runs before the writer takes its stack.
        self.busy_after = busy_after
        #: Requests ended since the last send: appended by request threads.
        self._ended: deque[Request] = deque()
        #: Aborted requests, with when: put back at exit if recent (see ``ABORT_GRACE``).
        self._aborted: deque[tuple[Request, float]] = deque(maxlen=inflight.MAX_IN_FLIGHT)
        #: What the store holds of the in-flight table: field -> (request, version, stack taken).
        self._written: dict[str, tuple[Request, int, bool]] = {}
        self._served = self._failed = 0
        self._refreshed = 0.0
        #: This writer's name and its last batch's number (see ``BatchNumber``).
        self._writer = os.urandom(8).hex()
        self._number = 0
        #: A batch that may not have reached the store: sent again, alone, first.
        self._unsent: _Batch | None = None
        #: A batch was refused for good (logged once until one is taken).
        self._rejected = False

    def record(self, message: str) -> None:
        """Queue ``message``, stamped now; never blocks on Redis."""
        if self._thread is None:
            self._start()
        queue = self._queue
        queue.append((inflight.wall(), message))
        if len(queue) > self.max_queue:
            self._drop_oldest()

    def begin_request(self, label: str, clock: float | None = None) -> Request:
        """Enter the calling thread's request in the process's in-flight table and queue
        its ``Started`` (``Created`` first, in a process's first request). ``clock`` is
        when it started, a ``time.perf_counter()`` reading (None: now)."""
        if not self.created:
            self._first_request()
            clock = None  # started after ``Created``, stamped just now
        if clock is None:
            clock = time.perf_counter()
        request = inflight.begin(label, clock + inflight.clock_offset)
        self._queue.append(request)  # the queue's bound is kept as the request ends
        return request

    def finish_request(
        self, request: Request, seconds: float, status: int, clock: float | None = None
    ) -> None:
        """The request was answered with ``status`` after ``seconds`` (``Finished``, worded
        by the writer); ``clock``, a ``time.perf_counter()`` reading, is when (None: now).
        ``end_request`` for a served request, inline: every tile ends here."""
        if clock is None:
            clock = time.perf_counter()
        request.status = status
        request.seconds = seconds
        request.outcome = SERVED
        request.ended = now = clock + inflight.clock_offset
        inflight.end(request)
        queue = self._queue
        queue.append((now, request))
        self._ended.append(request)
        if len(queue) > self.max_queue:  # Redis is away: the writer cannot send
            self._drop_oldest()
        if self.terminating:
            self._ended_while_terminating()

    def fail_request(
        self, request: Request, exc: BaseException, seconds: float, status: int
    ) -> None:
        """The request failed with ``exc`` and was answered with ``status``; its process
        goes on."""
        request.status, request.seconds = status, seconds
        self.end_request(request, FAILED, vocabulary.error(exc, seconds))

    def abort_request(self, request: Request, exc: BaseException, seconds: float) -> None:
        """The request was ended by ``exc``, not an ``Exception`` (``SystemExit`` from
        gunicorn's timeout, ``KeyboardInterrupt``): recorded as an error and counted as a
        server error with its seconds (the client gets a 500, or nothing); if the process
        now exits, the request is shown as what it died on."""
        request.status, request.seconds = ABORTED_STATUS, seconds
        self.end_request(request, ABORTED, vocabulary.error(exc, seconds))

    def lock_attempted(self) -> None:
        self.record(vocabulary.lock_attempted())

    def lock_acquired(self, seconds: float) -> None:
        self.record(vocabulary.lock_acquired(seconds))

    def lock_broken(self, layer: str, zoom: int, column: int, row: int, pid: int) -> None:
        """The metatile lock a dead process held was broken (``serving.locks``)."""
        self.record(vocabulary.lock_broken(layer, zoom, column, row, pid))

    def end_request(self, request: Request, outcome: str, closing: str | None = None) -> None:
        """Take ``request`` out of the table and queue its closing message: ``closing``,
        or ``Finished`` when None; ``outcome`` is SERVED, FAILED or ABORTED.

        A request with a ``status`` is counted in the statistics at the next send.
        """
        request.ended = now = inflight.wall()
        request.outcome = outcome
        if closing is not None:
            request.closing = closing
        inflight.end(request)
        queue = self._queue
        queue.append((now, request))
        self._ended.append(request)
        if len(queue) > self.max_queue:
            self._drop_oldest()
        if self.terminating:
            self._ended_while_terminating()

    def _ended_while_terminating(self) -> None:
        if not inflight.requests():
            self.say_destroyed(stop=False)  # the last request of a process told to stop

    def say_destroyed(self, stop: bool = True) -> None:
        """Record ``Destroyed`` (in a process that served tiles) and send it now, once.

        ``stop`` (at exit) also ends the writer and shows the requests an abort ended as
        what the process died on; without it (told to stop, not yet gone) the writer
        goes on, so whatever still happens is recorded too.
        """
        with self._destroy_lock:
            if self.destroyed:
                return
            self.destroyed = True
        if self.created:
            self.record(vocabulary.destroyed())
        if stop:
            self.prepare_exit()
            self.stop()
        else:
            self.flush(timeout=EXIT_TIMEOUT)

    def _first_request(self) -> None:
        self.created = True
        self.record(vocabulary.created())

    def flush(self, timeout: float = -1) -> bool:
        """Send what is queued now; False if it could not (yet) be sent."""
        if not self._send_lock.acquire(timeout=timeout):
            return False
        try:
            return self._send()
        finally:
            self._send_lock.release()

    def stop(self, timeout: float = EXIT_TIMEOUT, flush: bool = True) -> bool:
        """Stop the thread, then flush what is left unless told not to."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return self.flush(timeout=timeout) if flush else not (self._queue or self._unsent)

    # -- internals ---------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="tilestatus-writer", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            delay = self.interval if self.flush() else RETRY_INTERVAL

    def _drop_oldest(self) -> None:
        """Drop the oldest events past ``max_queue``; request threads and the writer may
        both be at it (each pop takes one event, and the length is read at each)."""
        queue = self._queue
        while len(queue) > self.max_queue:
            try:
                queue.popleft()
            except IndexError:
                return
            self.dropped += 1

    def _take_stats(self) -> Deltas:
        """The statistics to send with this batch, dropped events included."""
        deltas = self.stats.take()
        deltas.dropped = self.dropped - self._dropped_written
        return deltas

    def _in_flight(
        self, now: float, ttl: float
    ) -> tuple[InFlightUpdate | None, dict[str, tuple[Request, int, bool]]]:
        """What changed in the in-flight table since the last send, and the new state."""
        current = inflight.requests()[: inflight.MAX_IN_FLIGHT]
        state: dict[str, tuple[Request, int, bool]] = {}
        for request in current:
            if request.stack is None and now - request.started > self.busy_after:
                request.stack = inflight.capture_stack(request.ident) or []
            # The version is the request thread's alone (no lost increments); the
            # writer's own change, the stack, is told apart by its presence.
            state[str(request.ident)] = (request, request.version, request.stack is not None)
        refresh = bool(current) and now - self._refreshed > ttl / 3
        written = self._written
        changed = {
            key: request.encode()
            for key, (request, version, stacked) in state.items()
            if refresh or written.get(key) != (request, version, stacked)
        }
        gone = [key for key in written if key not in state]
        if not (changed or gone or self._served or self._failed):
            return None, state
        update = InFlightUpdate(
            set=changed,
            delete=gone,
            oldest=current[0].started if current else None,
            served=self._served,
            failed=self._failed,
            touch=now if refresh else None,
        )
        return update, state

    def _drain_ended(self, now: float) -> None:
        """Count the requests that ended since the last send: served or failed, and in
        the statistics; keep the aborted ones for ``prepare_exit``."""
        ended = self._ended
        popleft = ended.popleft
        requests = [popleft() for _ in range(len(ended))]
        if not requests:
            return
        unserved = [request for request in requests if request.outcome != SERVED]
        self._served += len(requests) - len(unserved)
        self._failed += len(unserved)
        self._aborted.extend((request, now) for request in unserved if request.outcome == ABORTED)
        self.stats.count_ended(requests, self.tile_labels)

    def prepare_exit(self) -> None:
        """At exit: the requests whose abort ended the process count as in flight."""
        self._stop.set()
        if self._send_lock.acquire(timeout=EXIT_TIMEOUT):  # not while the writer sends
            try:
                self._put_back_aborted(time.time())
            finally:
                self._send_lock.release()

    def _put_back_aborted(self, now: float) -> None:
        self._drain_ended(now)  # ended just now, perhaps by the exit itself
        for request, when in self._aborted:
            if now - when <= ABORT_GRACE:
                inflight.restore(request)

    def _announce_due(self, now: float, ttl: float) -> bool:
        """Whether this send announces the PID namespace: a known one, first, then every
        ``ttl / 2`` (the store keeps it twice ``ttl``, so it outlives the messages)."""
        announced = self._announced
        return self.namespace is not None and (announced is None or now - announced > ttl / 2)

    def _send(self) -> bool:
        """Send the batch a failed send left (alone, under its number), then a new one."""
        now = inflight.sync_clock()
        self._drain_ended(now)
        try:
            store = self._store_factory()
        except Exception as exc:  # noqa: BLE001 - recording must never break serving
            self._paused(exc)
            return False
        if self._unsent is not None:
            self._bound_unsent()
            if not self._write(store, self._unsent):
                return False
        try:
            batch = self._take_batch(store, now)
        except Exception as exc:  # noqa: BLE001 - recording must never break serving
            self._paused(exc)
            return False
        return batch is None or self._write(store, batch)

    def _take_batch(self, store: StatusStore, now: float) -> _Batch | None:
        """What has gathered since the last batch, numbered; None if nothing has."""
        update, state = self._in_flight(now, store.ttl)  # first: if it fails, nothing is taken
        queue = self._queue
        # As many as are queued now; a request thread may append meanwhile (kept for later),
        # or drop the oldest (Redis away), so the queue may run out first.
        popleft = queue.popleft
        items: list[Queued] = []
        append = items.append
        try:
            for _ in range(len(queue)):
                append(popleft())
        except IndexError:
            pass
        deltas = self._take_stats()
        if not items and update is None and not deltas:
            return None
        # From here the batch owns what it carries, sent or not: it is sent again, with
        # this number, until the store has it.
        self._dropped_written += deltas.dropped
        self._served = self._failed = 0
        self._number += 1
        touched = update is not None and update.touch is not None
        return _Batch(
            BatchNumber(self._writer, self._number), items, update, state, deltas, touched, now
        )

    def _write(self, store: StatusStore, batch: _Batch) -> bool:
        """Send ``batch``; if it may not have reached the store, keep it to send again."""
        try:
            if self._announce_due(batch.taken, store.ttl):
                # Before the write: no reader finds the entry without its namespace.
                store.announce(self.host, self.pid, self.namespace)
                self._announced = batch.taken
            store.write(
                self.host,
                self.pid,
                QueuedEvents(batch.items),
                batch.update,
                stats=batch.deltas,
                batch=batch.number,
            )
        except StoreRejected as exc:
            # Never taken as it is: dropped (its events counted so), not sent forever.
            self._unsent = None
            self.dropped += len(batch.items)
            if not self._rejected:
                self._rejected = True
                logger.warning(
                    "Tile status recording dropped a batch of %d events, %s.",
                    len(batch.items),
                    exc,
                )
            return True
        except Exception as exc:  # noqa: BLE001 - recording must never break serving
            # Held aside, not merged with newer events: Redis may have applied it (a lost
            # reply), and then the store skips it by its number. Its events count
            # against ``max_queue`` with the queue's (``_bound_unsent``).
            self._unsent = batch
            self._bound_unsent()
            self._paused(exc)
            return False
        self._unsent = None
        self._rejected = False
        self._written = batch.state
        if batch.touched:
            self._refreshed = batch.taken
        if self._outage:
            self._outage = False
            logger.warning(
                "Tile status recording resumed; %d events were dropped meanwhile.", self.dropped
            )
        return True

    def _bound_unsent(self) -> None:
        """Keep the newest ``max_queue`` events in all: the held batch's are the oldest,
        so they go first (its statistics and in-flight changes stay)."""
        unsent = self._unsent
        if unsent is None:
            return
        excess = len(self._queue) + len(unsent.items) - self.max_queue
        if excess > 0:
            cut = min(excess, len(unsent.items))
            del unsent.items[:cut]
            self.dropped += cut

    def _paused(self, exc: Exception) -> None:
        if not self._outage:
            self._outage = True
            reason = str(exc) if isinstance(exc, StoreUnavailable) else repr(exc)
            logger.warning(
                "Tile status recording paused, %s; "
                "tiles are still served and events are held in memory.",
                reason,
            )


@dataclass
class _Batch:
    """One send's worth, kept as it was until the store has it (see ``Recorder._write``)."""

    number: BatchNumber
    items: list[Queued]
    update: InFlightUpdate | None
    #: The in-flight table as the store holds it once this batch is applied.
    state: dict[str, tuple[Request, int, bool]]
    deltas: Deltas
    #: Whether ``update`` refreshes every key (see ``Recorder._in_flight``).
    touched: bool
    #: When it was taken.
    taken: float


#: What the queue holds (see ``Recorder._queue``).
Queued = Request | tuple[float, str | Request]


def event_of(item: Queued) -> tuple[float, str]:
    """A queued item as the event it stands for: ``(time, message)``."""
    if isinstance(item, Request):
        return item.started, vocabulary.started(item.path)
    stamp, what = item
    if isinstance(what, Request):
        closing = what.closing
        return stamp, vocabulary.finished(what.path, what.seconds) if closing is None else closing
    return stamp, what


class QueuedEvents(Sequence[tuple[float, str]]):
    """A batch as the store reads it, each event worded when read: the store reads only
    the newest it keeps."""

    def __init__(self, items: list[Queued]):
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> tuple[float, str]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[float, str]]: ...

    def __getitem__(self, index: int | slice) -> tuple[float, str] | list[tuple[float, str]]:
        if isinstance(index, slice):
            return [event_of(item) for item in self._items[index]]
        return event_of(self._items[index])


def _no_labels(path: str) -> tuple[str, int]:
    return OTHER_LAYER, NO_ZOOM


# -- the process's recorder ------------------------------------------------

_recorder: Recorder | None = None
#: True once the factory said recording is off, until settings change.
_disabled = False
_factory: Callable[[], Recorder | None] | None = None
_lock = threading.Lock()


def install_factory(factory: Callable[[], Recorder | None] | None) -> None:
    """Make this process's recorders with ``factory`` (None: record nothing)."""
    global _factory
    _factory = factory
    discard_recorder(flush=False)


def active() -> Recorder | None:
    """This process's recorder, or None when recording is off.

    Called once per tile request, so the common case is one global read.
    """
    recorder = _recorder
    if recorder is not None or _disabled:
        return recorder
    return _make()


def _make() -> Recorder | None:
    global _recorder, _disabled
    with _lock:
        if _recorder is None and not _disabled:
            made = _factory() if _factory is not None else None
            if made is None:
                _disabled = True
            else:
                _recorder = made
        return _recorder


def existing_recorder() -> Recorder | None:
    """This process's recorder if it has recorded anything, else None."""
    recorder = _recorder
    return recorder if recorder is not None and recorder.pid == os.getpid() else None


def flush_own_events(timeout: float = 1.0) -> None:
    """Send what this process has queued before it reads the store, so a read shows what
    the reader itself just recorded (waits at most ``timeout`` seconds)."""
    recorder = existing_recorder()
    if recorder is not None:
        recorder.flush(timeout=timeout)


def discard_recorder(flush: bool = True) -> None:
    """Stop and forget the recorder (settings changed); flush it first if asked."""
    global _recorder, _disabled
    with _lock:
        recorder, _recorder = _recorder, None
        _disabled = False
    if recorder is not None and recorder.pid == os.getpid():
        recorder.stop(flush=flush)


def _after_fork_in_child() -> None:
    # The parent's queue and thread are the parent's: start afresh.
    global _recorder, _lock
    _recorder = None
    _lock = threading.Lock()


def say_terminating() -> None:
    """The process was told to stop (SIGTERM) and will finish what is in flight first:
    ``Destroyed`` is recorded now when nothing is, else after the last request ends."""
    recorder = existing_recorder()
    if recorder is not None:
        recorder.terminating = True
        if not inflight.requests():
            recorder.say_destroyed(stop=False)


def say_destroyed_now() -> None:
    """The process ends now: record ``Destroyed``, show what an abort ended, flush."""
    recorder = existing_recorder()
    if recorder is not None:
        recorder.say_destroyed(stop=True)


def _at_exit() -> None:
    """Flush at a clean exit; a process that served tiles says ``Destroyed`` first."""
    say_destroyed_now()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
