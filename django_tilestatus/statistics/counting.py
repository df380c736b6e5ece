"""Tile request statistics, counted in process memory and written by the recorder.

Each tile request adds to the statistics (``schema``'s records) of its minute:
requests by layer, zoom and outcome and by response-time bucket, seconds, and
cache lock waits. The request itself only notes what happened on its
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

Response times fall into fixed buckets (``schema.BUCKETS``), so the page's
percentiles and Prometheus's histograms come from the same counts, and Redis
holds a bounded number of fields whatever the traffic. Lock waits are also
counted by the millisecond (``LockWaitMillis``, for their exact percentiles),
bounded per process, minute and layer by ``LOCK_WAIT_MS_KEPT``. What is counted, and
under which field names it is stored, is defined in ``schema``.

Core module: imports the standard library and ``schema`` only.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import operator
import threading
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .schema import (
    BUCKETS,
    CLIENT_ERROR,
    HIT,
    LOCK_WAIT_MS_CAP,
    LOCK_WAIT_MS_KEPT,
    NO_ZOOM,
    OTHER_LAYER,
    RENDERED,
    SERVER_ERROR,
    SLOWEST,
    LocksBroken,
    LockWaitBucket,
    LockWaitMillis,
    LockWaitSeconds,
    RequestCount,
    ResponseBucket,
    ResponseSeconds,
    SeedCount,
    SeedSeconds,
    SlowTile,
    Statistic,
)


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
    #: "" for a request, ``SEED`` for a tile a seeding job rendered.
    source: str
    #: Locks of dead holders it broke while waiting.
    locks_broken: int


@dataclass
class Ended:
    """An ended request known by its figures alone, not by a live in-flight entry: one
    its process died on (``reading.deaths``). Satisfies ``EndedRequest``."""

    path: str
    status: int | None
    from_cache: bool
    seconds: float
    lock_wait: float
    ended: float
    #: "" for a request, ``SEED`` for a tile a seeding job rendered.
    source: str = ""
    locks_broken: int = 0


N = TypeVar("N", int, float)
_K = TypeVar("_K")

# The writer names the same few records send after send: made once each.
_request_count = functools.lru_cache(maxsize=4096)(RequestCount)
_response_bucket = functools.lru_cache(maxsize=4096)(ResponseBucket)
_response_seconds = functools.lru_cache(maxsize=4096)(ResponseSeconds)
_lock_wait_bucket = functools.lru_cache(maxsize=4096)(LockWaitBucket)
_lock_wait_seconds = functools.lru_cache(maxsize=4096)(LockWaitSeconds)
_lock_wait_millis = functools.lru_cache(maxsize=4096)(LockWaitMillis)
_locks_broken = functools.lru_cache(maxsize=4096)(LocksBroken)
_seed_count = functools.lru_cache(maxsize=4096)(SeedCount)
_seed_seconds = functools.lru_cache(maxsize=4096)(SeedSeconds)

#: The ``source`` of a tile rendered by a seeding job: counted as ``SeedCount`` and
#: ``SeedSeconds`` only, never as traffic.
SEED = "seed"


def _add(values: dict[Statistic, N], record: Statistic, amount: N) -> None:
    values[record] = values.get(record, 0) + amount


def _keep_most(values: dict[Statistic, float], record: Statistic, value: float) -> None:
    known = values.get(record)
    values[record] = value if known is None else max(known, value)


@dataclass
class Deltas:
    """What a process counted since the last send, per minute (unix time // 60) and
    record: the store adds them as they are, whatever the records."""

    #: minute -> record -> how many to add (``HINCRBY``).
    counts: dict[int, dict[Statistic, int]] = field(default_factory=dict)
    #: minute -> record -> how much to add (``HINCRBYFLOAT``).
    sums: dict[int, dict[Statistic, float]] = field(default_factory=dict)
    #: minute -> record -> the largest value seen (kept with ``ZADD GT``).
    maxima: dict[int, dict[Statistic, float]] = field(default_factory=dict)
    #: The slowest requests, at most ``SLOWEST`` (a min-heap).
    slowest: list[SlowTile] = field(default_factory=list)
    #: Recording events dropped (queue full while Redis was away).
    dropped: int = 0

    def __bool__(self) -> bool:
        return bool(self.counts or self.dropped)

    def merge(self, other: Deltas) -> None:
        """Add ``other`` (deltas a failed send gives back) into these."""
        for minute, counts in other.counts.items():
            mine = self.counts.setdefault(minute, {})
            for record, count in counts.items():
                _add(mine, record, count)
        for minute, sums in other.sums.items():
            summed = self.sums.setdefault(minute, {})
            for record, total in sums.items():
                _add(summed, record, total)
        for minute, maxima in other.maxima.items():
            most = self.maxima.setdefault(minute, {})
            for record, value in maxima.items():
                _keep_most(most, record, value)
        for slow in other.slowest:
            _keep_slowest(self.slowest, slow)
        self.dropped += other.dropped


def _bucket_sizes(ascending: list[float]) -> Iterator[tuple[int, int]]:
    """``(bucket, how many)`` of sorted values, for the buckets holding any: a value's
    bucket is the first whose upper bound is at least the value (a value equal to a
    bound is in that bound's bucket)."""
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


def millis(seconds: float) -> int:
    """A wait's length as ``LockWaitMillis`` counts it: rounded to the millisecond, half up."""
    return int(seconds * 1000 + 0.5)


def _keep_slowest(heap: list[SlowTile], slow: SlowTile) -> None:
    if len(heap) < SLOWEST:
        heapq.heappush(heap, slow)
    elif slow > heap[0]:
        heapq.heapreplace(heap, slow)


def _groups(
    requests: Iterable[EndedRequest],
) -> dict[tuple[str, int, bool, int, str], list[EndedRequest]]:
    """Answered requests grouped by their path's ``tile_head``, status, cache, minute (unix
    time // 60) and source: all the work done per request, kept to a few operations.

    A path is first grouped by what ``rsplit`` leaves of it without its last two parts
    (``/layer/z`` of ``/layer/z/x/y.ext``), one C call; a group whose paths that does not
    tell the head of (no slash after its leading ones: ``/x``, ``/layer/preview.html``)
    is grouped again path by path.
    """
    groups: dict[tuple[str, int, bool, int, str], list[EndedRequest]] = {}
    get = groups.get
    minute, low, high = 0, 0.0, 0.0  # the minute last seen, and its bounds
    for request in requests:
        status = request.status
        if status is None:
            continue
        ended = request.ended
        if not low <= ended < high:
            minute = int(ended // 60)
            low = minute * 60.0
            high = low + 60.0
        key = (request.path.rsplit("/", 2)[0], status, request.from_cache, minute, request.source)
        group = get(key)
        if group is None:
            groups[key] = [request]
        else:
            group.append(request)
    found: dict[tuple[str, int, bool, int, str], list[EndedRequest]] = {}
    for key, members in groups.items():
        cut, status, from_cache, minute, source = key
        if "/" in cut.lstrip("/"):  # the head of every path of the group
            _join(found, (tile_head(cut), status, from_cache, minute, source), members)
        else:
            for request in members:
                head = tile_head(request.path)
                _join(found, (head, status, from_cache, minute, source), [request])
    return found


def _join(groups: dict[_K, list[EndedRequest]], key: _K, members: list[EndedRequest]) -> None:
    group = groups.get(key)
    if group is None:
        groups[key] = members
    else:
        group.extend(members)


class TileStats:
    """One process's statistics since the last send; thread-safe and cheap to add to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deltas = Deltas()
        #: (minute, layer) -> the milliseconds of lock waits counted (``LockWaitMillis``),
        #: at most ``LOCK_WAIT_MS_KEPT``; the last few minutes only.
        self._millis: dict[tuple[int, str], set[int]] = {}
        #: minute -> the seconds of the ``SLOWEST`` slowest requests counted in it (a
        #: min-heap; the last few minutes only). A request no slower than all of them is
        #: in no top ``SLOWEST`` of its minute, this process's or the site's: a group of
        #: such requests is not looked through for the slowest.
        self._slowest_seen: dict[int, list[float]] = {}

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
        groups = _groups(requests)
        if not groups:
            return
        labels_of: dict[str, tuple[str, int]] = {}
        with self._lock:
            for (head, status, from_cache, minute, source), members in groups.items():
                pair = labels_of.get(head)
                if pair is None:
                    pair = labels_of[head] = labels(head)
                outcome = outcome_of(status, from_cache)
                if source == SEED:
                    self._add_seeded(minute, *pair, outcome, members)
                else:
                    self._add_group(minute, *pair, outcome, members)

    def _add_seeded(
        self, minute: int, layer: str, zoom: int, outcome: str, members: list[EndedRequest]
    ) -> None:
        """Count tiles a seeding job rendered (apart from traffic)."""
        deltas = self._deltas
        counts = deltas.counts.setdefault(minute, {})
        _add(counts, _seed_count(layer, zoom, outcome), len(members))
        sums = deltas.sums.setdefault(minute, {})
        _add(sums, _seed_seconds(layer, outcome), sum(request.seconds for request in members))

    def _add_group(
        self, minute: int, layer: str, zoom: int, outcome: str, members: list[EndedRequest]
    ) -> None:
        """Count requests of one minute, layer, zoom and outcome: each figure is read in
        one pass over the group, then worked out from the list."""
        deltas = self._deltas
        by_member = [request.seconds for request in members]
        seconds = sorted(by_member)
        counts = deltas.counts.get(minute)
        if counts is None:
            counts = deltas.counts[minute] = {}
        sums = deltas.sums.get(minute)
        if sums is None:
            sums = deltas.sums[minute] = {}
        _add(counts, _request_count(layer, zoom, outcome), len(seconds))
        for bucket, size in _bucket_sizes(seconds):
            _add(counts, _response_bucket(layer, outcome, bucket), size)
        response = _response_seconds(layer, outcome)
        _add(sums, response, sum(seconds))
        _keep_most(deltas.maxima.setdefault(minute, {}), response, seconds[-1])
        lock_waits = [request.lock_wait for request in members]
        if max(lock_waits) > 0:  # a lock is broken only while waiting for it, so here only
            waits = sorted([wait for wait in lock_waits if wait > 0])
            for bucket, size in _bucket_sizes(waits):
                _add(counts, _lock_wait_bucket(layer, bucket), size)
            _add(sums, _lock_wait_seconds(layer), sum(waits))
            _keep_most(deltas.maxima.setdefault(minute, {}), _lock_wait_seconds(layer), waits[-1])
            self._add_millis(counts, minute, layer, waits)
            broken = sum([request.locks_broken for request in members])
            if broken:
                _add(counts, _locks_broken(layer), broken)
        self._add_slowest(minute, layer, zoom, members, by_member, seconds)

    def _add_slowest(
        self,
        minute: int,
        layer: str,
        zoom: int,
        members: list[EndedRequest],
        by_member: list[float],
        ascending: list[float],
    ) -> None:
        """Offer the group's slowest requests (of one minute) to the slowest of this send."""
        slowest = self._deltas.slowest
        seen = self._seen_in(minute)
        if (len(seen) >= SLOWEST and ascending[-1] <= seen[0]) or (
            len(slowest) >= SLOWEST and ascending[-1] <= slowest[0].seconds
        ):
            return
        # Only the group's SLOWEST slowest can enter: those at least its SLOWEST-th.
        least = ascending[-SLOWEST] if len(ascending) > SLOWEST else ascending[0]
        contenders = itertools.compress(members, map(least.__le__, by_member))
        for request in heapq.nlargest(SLOWEST, contenders, key=_SECONDS_OF):
            if len(seen) < SLOWEST:
                heapq.heappush(seen, request.seconds)
            elif request.seconds > seen[0]:
                heapq.heapreplace(seen, request.seconds)
            else:
                continue
            slow = SlowTile(request.seconds, request.ended, layer, zoom, request.path)
            _keep_slowest(slowest, slow)

    def _seen_in(self, minute: int) -> list[float]:
        seen = self._slowest_seen.get(minute)
        if seen is None:
            for old in [known for known in self._slowest_seen if known < minute - 2]:
                del self._slowest_seen[old]
            seen = self._slowest_seen[minute] = []
        return seen

    def _add_millis(
        self, counts: dict[Statistic, int], minute: int, layer: str, waits: list[float]
    ) -> None:
        """Count lock waits by the millisecond (``LockWaitMillis``), up to
        ``LOCK_WAIT_MS_CAP`` and ``LOCK_WAIT_MS_KEPT`` distinct milliseconds per minute and
        layer; a wait left out is in the buckets alone, and the page words its window's
        percentiles as estimates."""
        kept = self._millis.get((minute, layer))
        if kept is None:
            for old in [key for key in self._millis if key[0] < minute - 2]:
                del self._millis[old]
            kept = self._millis[(minute, layer)] = set()
        for ms, size in Counter(map(millis, waits)).items():
            if ms > LOCK_WAIT_MS_CAP:
                continue
            if ms not in kept:
                if len(kept) >= LOCK_WAIT_MS_KEPT:
                    continue
                kept.add(ms)
            _add(counts, _lock_wait_millis(layer, ms), size)

    def take(self) -> Deltas:
        """Everything counted since the last ``take``; counting starts afresh."""
        with self._lock:
            deltas, self._deltas = self._deltas, Deltas()
        return deltas

    def give_back(self, deltas: Deltas) -> None:
        """Return deltas a send could not write, to be sent with the next."""
        with self._lock:
            self._deltas.merge(deltas)
