"""A wrapper around TileStache's cache (not Django's) that records waiting for its lock.

TileStache takes the cache lock only when a tile is not cached, so a warm tile
records nothing here. Waiting on that lock is where a busy tile server stalls
(another worker renders the same metatile), which is why it is recorded.

It tells the request's in-flight entry (``inflight``) what the request is doing:
reading the cache, waiting for the lock of a metatile (TileStache locks the
metatile's corner, the coordinate ``lock`` is given), rendering once the lock is
held or when the cache had nothing; and, for the tile statistics, whether
``read`` returned a body (the tile was served from the cache) and how long the
lock took.

For the Disk, Redis, Memcache and Multi caches the wrapper takes the lock itself
(``locks``): the cache's own lock, tried without waiting, handed by its holder to a
waiter of the same process without being released, other waiters seeing it released
within milliseconds, and dead holders' locks broken at once.

Core module: imports the standard library, ``locks`` and ``recording`` only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..recording import inflight
from ..recording.recorder import active
from . import locks


def _layer_name(layer: Any) -> str:
    """The layer's name in the configuration (TileStache's ``Layer.name()``)."""
    try:
        return str(layer.name())
    except Exception:  # noqa: BLE001 - a name is a label, never worth failing a tile
        return "?"


_UNKNOWN: Any = object()

#: The lock backends this thread took locks through, until their unlock (key:
#: ``_taken_key``; None where the cache keeps its own lock): the unlock reuses what the
#: lock worked out (the lock's path, say) instead of redoing it.
_taken = threading.local()


def _taken_locks() -> dict[tuple[Any, ...], locks.LockBackend | None]:
    try:
        held: dict[tuple[Any, ...], locks.LockBackend | None] = _taken.locks
    except AttributeError:
        held = _taken.locks = {}
    return held


def _taken_key(cache: Any, name: str, coord: Any, format: str) -> tuple[Any, ...]:
    return (id(cache), name, int(coord.zoom), int(coord.column), int(coord.row), format)


class InstrumentedCache:
    """Delegates to the wrapped cache; times ``lock()`` and records it.

    ``unlock`` hands a lock taken through ``locks`` to a waiter of this process when
    there is one, and otherwise releases it; ``read``, ``save`` and ``remove`` are the
    rest of TileStache's cache interface and pass straight through, as does any other
    attribute (a Disk cache's ``cachepath``, say).
    """

    def __init__(self, inner: Any):
        self.inner = inner

    def _backend(self, layer: Any, coord: Any, format: str) -> locks.LockBackend | None:
        try:
            return locks.backend_for(self.inner, layer, coord, format)
        except Exception:  # noqa: BLE001 - an unexpected cache keeps its own lock
            return None

    def _take(self, layer: Any, coord: Any, format: str, name: str) -> locks.Acquired | None:
        """The lock taken through ``locks`` (None: by the cache's own ``lock()``)."""
        backend = self._backend(layer, coord, format)
        if backend is None:
            self.inner.lock(layer, coord, format)
            _taken_locks()[_taken_key(self.inner, name, coord, format)] = None
            return None
        metatile = f"{int(coord.zoom)}/{int(coord.column)}/{int(coord.row)}"
        acquired = locks.acquire(backend, name, metatile, float(layer.stale_lock_timeout))
        _taken_locks()[_taken_key(self.inner, name, coord, format)] = backend
        return acquired

    def lock(self, layer: Any, coord: Any, format: str) -> Any:
        recorder = active()
        name = _layer_name(layer)
        if recorder is None:
            self._take(layer, coord, format, name)
            return None
        recorder.lock_attempted()
        request = inflight.waiting_for_cache_lock(
            name, int(coord.zoom), int(coord.column), int(coord.row)
        )
        start = time.perf_counter()
        acquired = self._take(layer, coord, format, name)
        waited = time.perf_counter() - start
        for claim in acquired.broken if acquired is not None else ():
            recorder.lock_broken(
                name, int(coord.zoom), int(coord.column), int(coord.row), claim.pid
            )
        recorder.lock_acquired(waited)
        if request is not None:
            if acquired is not None:
                request.locks_broken += len(acquired.broken)
            inflight.cache_lock_held(request, waited, acquired.token if acquired else "")
        return None

    def unlock(self, layer: Any, coord: Any, format: str) -> Any:
        inflight.cache_lock_released()
        key = _taken_key(self.inner, _layer_name(layer), coord, format)
        backend = _taken_locks().pop(key, _UNKNOWN)
        if backend is _UNKNOWN:  # not locked by this thread through this wrapper
            backend = self._backend(layer, coord, format)
        if backend is not None and locks.hand_over(backend):
            return None  # a waiter of this process holds it now
        if backend is None:
            return self.inner.unlock(layer, coord, format)
        backend.releasing()  # before the release: then the lock is the next holder's
        result = None if backend.release() else self.inner.unlock(layer, coord, format)
        locks.released(backend.key)
        return result

    def read(self, layer: Any, coord: Any, format: str) -> Any:
        request = inflight.cache_read_begins()
        body = self.inner.read(layer, coord, format)
        if request is not None:
            inflight.cache_read_ends(request, body is not None)
        return body

    def save(self, body: Any, layer: Any, coord: Any, format: str) -> Any:
        return self.inner.save(body, layer, coord, format)

    def remove(self, layer: Any, coord: Any, format: str) -> Any:
        return self.inner.remove(layer, coord, format)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not yet set (copying, unpickling): avoid recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"InstrumentedCache({self.inner!r})"
