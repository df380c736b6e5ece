"""The per-process background writer that keeps recording off the request path.

A request only appends ``(time, message)`` to an in-memory queue, which costs
microseconds. A daemon thread, started lazily in each process (so after a
gunicorn fork), wakes on a timer and sends whatever has gathered as one
pipelined write. Order is kept; when Redis is away the queue is bounded by
dropping the oldest events (and counting them), a warning is logged once per
outage, and sending resumes by itself. At a clean exit the process records
``Destroyed`` and flushes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from redis.exceptions import ResponseError

from .store import StatusStore

logger = logging.getLogger(__name__)

#: Seconds between the writer's sends. Waking on a timer rather than per
#: event keeps thread switches off the request path. Each send costs the
#: worker some 0.5-1 ms of CPU whatever its size: every 50 ms that was ~2% of
#: a busy worker, every 200 ms it is under 1%, and events still show well
#: within a second.
INTERVAL = 0.2
#: Seconds between attempts while Redis is unreachable.
RETRY_INTERVAL = 1.0
#: Events held in memory at most while Redis is away (oldest dropped first).
MAX_QUEUE = 10_000
#: Seconds a clean exit waits at most to flush.
EXIT_TIMEOUT = 2.0


class Recorder:
    """Queues one process's events and writes them from a background thread."""

    def __init__(
        self,
        store_factory: Callable[[], StatusStore],
        host: str,
        pid: int,
        interval: float = INTERVAL,
        max_queue: int | None = None,
    ):
        self.host = host
        self.pid = pid
        self.interval = interval
        # Read here, not at import, so a process can tune the module's bound.
        self.max_queue = MAX_QUEUE if max_queue is None else max_queue
        #: Events lost because the queue was full while Redis was away.
        self.dropped = 0
        self.created = False
        self._store_factory = store_factory
        self._queue: deque[tuple[float, str]] = deque()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._outage = False

    def record(self, message: str) -> None:
        """Queue ``message``, stamped now; never blocks on Redis."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            self._drop_oldest(len(queue) - self.max_queue + 1)
        queue.append((time.time(), message))
        if self._thread is None:
            self._start()

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
        return self.flush(timeout=timeout) if flush else not self._queue

    @property
    def pending(self) -> int:
        return len(self._queue)

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

    def _drop_oldest(self, count: int) -> None:
        for _ in range(count):
            try:
                self._queue.popleft()
            except IndexError:
                return
            self.dropped += 1

    def _send(self) -> bool:
        queue = self._queue
        batch = []
        while queue:
            batch.append(queue.popleft())
        if not batch:
            return True
        try:
            self._store_factory().write(self.host, self.pid, batch)
        except Exception as exc:  # noqa: BLE001 - recording must never break serving
            queue.extendleft(reversed(batch))
            if len(queue) > self.max_queue:
                self._drop_oldest(len(queue) - self.max_queue)
            if not self._outage:
                self._outage = True
                logger.warning(
                    "Tile status recording paused, %s; "
                    "tiles are still served and events are held in memory.",
                    describe_failure(exc),
                )
            return False
        if self._outage:
            self._outage = False
            logger.warning(
                "Tile status recording resumed; %d events were dropped meanwhile.", self.dropped
            )
        return True


def describe_failure(exc: BaseException) -> str:
    """Why a write failed, for the log: unreachable, or refused (full, read-only...).

    redis-py quotes the failed pipeline command, whose arguments are tile
    paths (user input), in its error text; only Redis's own reason is kept.
    """
    if isinstance(exc, ResponseError):
        reason = str(exc).rpartition(" of pipeline caused error: ")[2]
        return f"Redis refused the write ({type(exc).__name__}: {reason})"
    return f"Redis is unavailable ({type(exc).__name__}: {exc})"


# -- the process's recorder ------------------------------------------------

_recorder: Recorder | None = None
_lock = threading.Lock()


def get_recorder(factory: Callable[[], Recorder]) -> Recorder:
    """This process's recorder, made by ``factory`` on first use."""
    global _recorder
    recorder = _recorder
    if recorder is None:
        with _lock:
            if _recorder is None:
                _recorder = factory()
            recorder = _recorder
    return recorder


def existing_recorder() -> Recorder | None:
    """This process's recorder if it has recorded anything, else None."""
    recorder = _recorder
    return recorder if recorder is not None and recorder.pid == os.getpid() else None


def discard_recorder(flush: bool = True) -> None:
    """Stop and forget the recorder (settings changed); flush it first if asked."""
    global _recorder
    with _lock:
        recorder, _recorder = _recorder, None
    if recorder is not None and recorder.pid == os.getpid():
        recorder.stop(flush=flush)


def _after_fork_in_child() -> None:
    # The parent's queue and thread are the parent's: start afresh.
    global _recorder, _lock
    _recorder = None
    _lock = threading.Lock()


def _at_exit() -> None:
    """Flush at a clean exit; a process that served tiles says ``Destroyed`` first."""
    recorder = existing_recorder()
    if recorder is not None:
        if recorder.created:
            recorder.record("Destroyed")
        recorder.stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
