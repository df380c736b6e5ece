"""Tile request statistics, counted in process memory and written by the recorder.

Each tile request adds one count keyed by minute, layer, zoom, outcome and
response-time bucket. The request itself only notes what happened on its
in-flight entry (whether the cache gave the tile, how long the cache lock took,
its status and seconds; see ``inflight``); the recorder's background writer
counts the requests that ended since its last send, takes the accumulated deltas
(``TileStats.take``) and the store adds them, with ``HINCRBY``/``HINCRBYFLOAT``,
to the same pipeline as the messages. No counting, and no Redis, on the
request path.

Outcomes, decided from TileStache's own flow (``Layer.getTileResponse``):

- ``hit``: a 2xx/3xx answer for which ``cache.read`` returned a body (before
  the lock, or after it when another worker rendered the tile meanwhile);
- ``rendered``: a 2xx/3xx answer the cache did not provide (the provider drew
  it, or the request was not for a tile: index, preview, redirect);
- ``client_error``: a 4xx answer (bad path, unknown layer, a provider's
  "no tile here");
- ``server_error``: a 5xx answer, or an exception.

Response times fall into fixed buckets (``BUCKETS``), so the page's
percentiles and Prometheus's histograms come from the same counts, and Redis
holds a bounded number of fields whatever the traffic.

Core module: imports the standard library only.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import json
import operator
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Upper bounds (seconds) of the response and lock-wait buckets, from a warm
#: tile read (5 ms) to a render that times out (30 s); one more bucket, +Inf,
#: follows. Changing them changes what older Redis data means: keep them.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Number of buckets, +Inf included; bucket ``len(BUCKETS)`` is +Inf.
BUCKET_COUNT = len(BUCKETS) + 1

HIT, RENDERED, CLIENT_ERROR, SERVER_ERROR = "hit", "rendered", "client_error", "server_error"
OUTCOMES = (HIT, RENDERED, CLIENT_ERROR, SERVER_ERROR)

#: The layer label of a path that names no configured layer (an unknown
#: layer, the index, a bad path), so user input never becomes a label.
OTHER_LAYER = "(other)"
#: The zoom of a request whose path holds no zoom within range.
NO_ZOOM = -1
#: Slowest tiles kept per minute.
SLOWEST = 10

#: Field kinds in the statistics hashes (see ``field_name``): requests by layer, zoom and
#: outcome; requests by layer, outcome and response bucket; response seconds summed by
#: layer and outcome; lock waits by layer and bucket; lock wait seconds summed by layer.
#: Zoom and bucket are never crossed: that keeps the fields per layer at
#: ``zooms x outcomes + outcomes x buckets`` rather than their product.
COUNT, BUCKET, SECONDS, LOCK_COUNT, LOCK_SECONDS = "n", "b", "s", "w", "ws"


def bucket_of(seconds: float) -> int:
    """The index of the first bucket whose upper bound is at least ``seconds``."""
    return bisect.bisect_left(BUCKETS, seconds)


def outcome_of(status: int, from_cache: bool) -> str:
    """A request's outcome from its HTTP status and whether the cache gave the body."""
    if status >= 500:
        return SERVER_ERROR
    if status >= 400:
        return CLIENT_ERROR
    return HIT if from_cache else RENDERED


def tile_head(path: str) -> str:
    """The part of a path that ``tile_of`` reads (``layer/z``): paths with the same head
    have the same labels, so labels can be worked out once per head."""
    path = path.lstrip("/")
    first = path.find("/")
    second = path.find("/", first + 1) if first >= 0 else -1
    return path if second < 0 else path[:second]


def tile_of(path: str, layers: Container[str], max_zoom: int) -> tuple[str, int]:
    """``(layer, zoom)`` of a path like ``layer/z/x/y.ext``, as labels.

    The layer is ``OTHER_LAYER`` unless configured; the zoom ``NO_ZOOM`` unless
    the layer is configured and the zoom whole and within ``0..max_zoom``;
    labels are bounded whatever the path.
    """
    parts = path.lstrip("/").split("/", 2)
    if parts[0] not in layers:
        return OTHER_LAYER, NO_ZOOM
    layer, zoom = parts[0], NO_ZOOM
    if len(parts) > 1 and parts[1].isascii() and parts[1].isdigit() and len(parts[1]) <= 3:
        number = int(parts[1])
        zoom = number if number <= max_zoom else NO_ZOOM
    return layer, zoom


# -- accumulating in memory ------------------------------------------------------


class EndedRequest(Protocol):
    """What a request noted for its statistics (the recorder's in-flight entries)."""

    #: As messages show it: ``/layer/z/x/y.ext``.
    path: str
    #: The HTTP status; None for a request that was not answered (not counted).
    status: int | None
    from_cache: bool
    seconds: float
    lock_wait: float
    #: When it ended (unix time).
    ended: float


@dataclass
class _Noted:
    """One request's notes, for ``TileStats.count``."""

    path: str
    status: int | None
    from_cache: bool
    seconds: float
    lock_wait: float
    ended: float


#: A status and cache flag per outcome, for ``TileStats.count``.
_STATUS_OF = {HIT: (200, True), RENDERED: (200, False), CLIENT_ERROR: (400, False)}


@dataclass(frozen=True, order=True)
class SlowTile:
    """One slow request, as the page lists it."""

    seconds: float
    when: float
    layer: str
    zoom: int
    path: str

    def as_json(self, host: str, pid: int) -> str:
        return json.dumps(
            {
                "seconds": round(self.seconds, 6),
                "when": round(self.when, 3),
                "layer": self.layer,
                "zoom": self.zoom,
                "path": self.path,
                "host": host,
                "pid": pid,
            }
        )


@dataclass
class Deltas:
    """What a process counted since the last send, keyed by minute (unix time // 60)."""

    #: ``(minute, layer, zoom, outcome, bucket)``: requests.
    counts: dict[tuple[int, str, int, str, int], int] = field(default_factory=dict)
    #: ``(minute, layer, outcome)``: ``[seconds summed, slowest seconds]``.
    seconds: dict[tuple[int, str, str], list[float]] = field(default_factory=dict)
    #: ``(minute, layer, bucket)``: requests that waited for the cache lock.
    lock_counts: dict[tuple[int, str, int], int] = field(default_factory=dict)
    #: ``(minute, layer)``: lock wait seconds summed.
    lock_seconds: dict[tuple[int, str], float] = field(default_factory=dict)
    #: The slowest requests, at most ``SLOWEST`` (a min-heap).
    slowest: list[SlowTile] = field(default_factory=list)
    #: Recording events dropped (queue full while Redis was away).
    dropped: int = 0

    def __bool__(self) -> bool:
        return bool(self.counts or self.dropped)

    def merge(self, other: Deltas) -> None:
        """Add ``other`` (deltas a failed send gives back) into these."""
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        for seconds_key, (total, slowest) in other.seconds.items():
            mine = self.seconds.setdefault(seconds_key, [0.0, 0.0])
            mine[0] += total
            mine[1] = max(mine[1], slowest)
        for lock_key, count in other.lock_counts.items():
            self.lock_counts[lock_key] = self.lock_counts.get(lock_key, 0) + count
        for layer_key, total in other.lock_seconds.items():
            self.lock_seconds[layer_key] = self.lock_seconds.get(layer_key, 0.0) + total
        for slow in other.slowest:
            _keep_slowest(self.slowest, slow)
        self.dropped += other.dropped


def _bucket_sizes(ascending: list[float]) -> Iterator[tuple[int, int]]:
    """``(bucket, how many)`` of sorted values, for the buckets holding any (``bucket_of``:
    a value equal to a bound is in that bound's bucket)."""
    start, total = 0, len(ascending)
    for bucket, bound in enumerate(BUCKETS):
        if start == total:
            return
        end = bisect.bisect_right(ascending, bound, start)
        if end > start:
            yield bucket, end - start
            start = end
    if start < total:
        yield len(BUCKETS), total - start


_SECONDS_OF = operator.attrgetter("seconds")


def _keep_slowest(heap: list[SlowTile], slow: SlowTile) -> None:
    if len(heap) < SLOWEST:
        heapq.heappush(heap, slow)
    elif slow > heap[0]:
        heapq.heapreplace(heap, slow)


class TileStats:
    """One process's statistics since the last send; thread-safe and cheap to add to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deltas = Deltas()

    def count(
        self,
        layer: str,
        zoom: int,
        outcome: str,
        seconds: float,
        lock_wait: float,
        path: str,
        when: float | None = None,
    ) -> None:
        """Count one request with ``outcome`` that ended at ``when`` (default: now); no I/O."""
        status, from_cache = _STATUS_OF.get(outcome, (500, False))
        ended = time.time() if when is None else when
        noted = _Noted(path, status, from_cache, seconds, lock_wait, ended)
        self.count_ended([noted], lambda head: (layer, zoom))

    def count_ended(
        self, requests: Iterable[EndedRequest], labels: Callable[[str], tuple[str, int]]
    ) -> None:
        """Count requests that ended (the recorder's writer counts a send's worth at once);
        one not answered (no status) is not counted.

        ``labels`` gives the ``(layer, zoom)`` of a ``tile_head``, and is asked once per
        head: a send's requests share a few heads, and labels must not change within one.

        The requests are first grouped by head, status, cache and minute, which is all
        the per-request work; buckets, sums, maxima, lock waits and the slowest are then
        worked out per group (a send of a busy worker holds hundreds of requests in a
        handful of groups).
        """
        groups: dict[tuple[str, int, bool, float], list[EndedRequest]] = {}
        for request in requests:
            status = request.status
            if status is not None:
                key = (tile_head(request.path), status, request.from_cache, request.ended // 60)
                group = groups.get(key)
                if group is None:
                    groups[key] = [request]
                else:
                    group.append(request)
        if not groups:
            return
        labels_of: dict[str, tuple[str, int]] = {}
        with self._lock:
            for (head, status, from_cache, minute), members in groups.items():
                pair = labels_of.get(head)
                if pair is None:
                    pair = labels_of[head] = labels(head)
                outcome = outcome_of(status, from_cache)
                self._add_group(int(minute), *pair, outcome, members)

    def _add_group(
        self, minute: int, layer: str, zoom: int, outcome: str, members: list[EndedRequest]
    ) -> None:
        """Count requests of one minute, layer, zoom and outcome."""
        deltas = self._deltas
        seconds = sorted([request.seconds for request in members])
        counts = deltas.counts
        for bucket, size in _bucket_sizes(seconds):
            key = (minute, layer, zoom, outcome, bucket)
            counts[key] = counts.get(key, 0) + size
        summed = deltas.seconds.get((minute, layer, outcome))
        if summed is None:
            deltas.seconds[minute, layer, outcome] = [sum(seconds), seconds[-1]]
        else:
            summed[0] += sum(seconds)
            summed[1] = max(summed[1], seconds[-1])
        waits = sorted([request.lock_wait for request in members if request.lock_wait > 0])
        lock_counts = deltas.lock_counts
        for bucket, size in _bucket_sizes(waits):
            lock_key = (minute, layer, bucket)
            lock_counts[lock_key] = lock_counts.get(lock_key, 0) + size
        if waits:
            deltas.lock_seconds[minute, layer] = deltas.lock_seconds.get(
                (minute, layer), 0.0
            ) + sum(waits)
        slowest = deltas.slowest
        if len(slowest) < SLOWEST or seconds[-1] > slowest[0].seconds:
            for request in heapq.nlargest(SLOWEST, members, key=_SECONDS_OF):
                slow = SlowTile(request.seconds, request.ended, layer, zoom, request.path)
                _keep_slowest(slowest, slow)

    def take(self) -> Deltas:
        """Everything counted since the last ``take``; counting starts afresh."""
        with self._lock:
            deltas, self._deltas = self._deltas, Deltas()
        return deltas

    def give_back(self, deltas: Deltas) -> None:
        """Return deltas a send could not write, to be sent with the next."""
        with self._lock:
            self._deltas.merge(deltas)


# -- field names in the statistics hashes ----------------------------------------


@functools.lru_cache(maxsize=4096)
def field_name(kind: str, *labels: Any) -> str:
    """A hash field: a JSON array of the kind and its labels (layer names are free text).

    Remembered: each send names the same few fields again."""
    return json.dumps([kind, *labels], separators=(",", ":"))


def parse_field(name: Any) -> tuple[Any, ...] | None:
    """``(kind, *labels)`` from a field name, or None for one this app did not write."""
    try:
        text = name.decode("utf-8") if isinstance(name, bytes) else str(name)
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, list) or not value:
        return None
    shapes = {
        COUNT: (str, int, str),
        BUCKET: (str, str, int),
        SECONDS: (str, str),
        LOCK_COUNT: (str, int),
        LOCK_SECONDS: (str,),
    }
    shape = shapes.get(value[0])
    labels = value[1:]
    if shape is None or len(labels) != len(shape):
        return None
    if not all(type(label) is kind for label, kind in zip(labels, shape, strict=True)):
        return None
    if value[0] == COUNT and labels[2] not in OUTCOMES:
        return None
    if value[0] == BUCKET and not (labels[1] in OUTCOMES and 0 <= labels[2] < BUCKET_COUNT):
        return None
    if value[0] == LOCK_COUNT and not 0 <= labels[1] < BUCKET_COUNT:
        return None
    return tuple(value)
