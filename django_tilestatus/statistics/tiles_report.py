"""The status page's "Tiles" section, computed from the per-minute statistics.

``build_tiles`` turns one read of the last hour (``StatMinutes``) into a
``TilesReport``: per layer, for the last 5 and 60 minutes, requests per
minute, the cache hit ratio, p50 / p95 / max response seconds for hits and
for renders, errors, cache-lock waits (p50 / p95 / max) and locks of dead holders
broken; per zoom, the hour's requests by outcome;
the hour's slowest tiles; and sparklines (SVG polyline points) of requests per
minute and p95 over the hour. Every format (HTML, JSON, text, the terminal
view) shows these values as computed here.

Percentiles are estimated from the fixed buckets of ``schema.BUCKETS`` as
Prometheus's ``histogram_quantile`` does (linear within the bucket), and never
exceed the slowest request seen. Lock waits are exact: their longest wait of
each minute is kept (a ``ZADD GT`` maximum), and the waits themselves by the
millisecond (``LockWaitMillis``), whose nearest-rank percentiles (``nearest_rank``)
are their p50 and p95. A window holding waits the milliseconds left out (longer
than 30 s, many distinct lengths, minutes written before they were kept) falls
back to bucket estimates capped by the longest wait, worded ``≈ 12 ms``.

Core module: imports the standard library, ``schema`` and ``vocabulary`` only.
"""

from __future__ import annotations

import math
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..recording.vocabulary import clean, nice_time
from .schema import (
    BUCKET_COUNT,
    BUCKETS,
    CLIENT_ERROR,
    HIT,
    NO_ZOOM,
    OTHER_LAYER,
    RENDERED,
    SERVER_ERROR,
    LocksBroken,
    LockWaitBucket,
    LockWaitMillis,
    LockWaitSeconds,
    RequestCount,
    ResponseBucket,
    ResponseSeconds,
    SlowRequest,
    Statistic,
    StatMinutes,
)

#: The windows of the Tiles section, in minutes.
WINDOWS = (5, 60)
#: Minutes read: the longest window.
MINUTES = max(WINDOWS)
#: Sparkline size in SVG user units.
SPARK_WIDTH, SPARK_HEIGHT = 120, 24


def quantile(q: float, buckets: Sequence[float], slowest: float | None = None) -> float | None:
    """The ``q`` quantile of bucket counts (``BUCKET_COUNT`` of them), or None if empty
    (or if the counts are not finite: the store bounds them, this does not rely on it)."""
    total = sum(buckets)
    if not 0 < total < math.inf:
        return None
    rank = q * total
    seen = 0.0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(BUCKETS):  # +Inf: the highest finite bound, as Prometheus
                estimate = BUCKETS[-1]
            else:
                lower = BUCKETS[index - 1] if index else 0.0
                estimate = lower + (BUCKETS[index] - lower) * (rank - seen) / count
            return min(estimate, slowest) if slowest is not None else estimate
        seen += count
    return None


def nearest_rank(percent: int, counts: Mapping[int, float]) -> int | None:
    """The ``percent`` percentile of whole values given as value -> how many, by nearest
    rank: of the ``n`` values sorted, the one of rank ``ceil(percent / 100 * n)`` (from 1),
    so always one of the values; None for none. Waits of 1 to 20 ms: p50 10 ms, p95 19 ms."""
    total = sum(_whole(count) for count in counts.values() if count > 0)
    if total <= 0:
        return None
    rank = max(1, -(-percent * total // 100))
    seen = 0
    for value in sorted(counts):
        count = _whole(counts[value])
        if count > 0:
            seen += count
            if seen >= rank:
                return value
    return None


def bucket_bound(q: float, buckets: Sequence[float]) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (``math.inf`` for the
    last), or None if empty: all that bucket counts say of it without a known maximum."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank, seen = q * total, 0.0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            return BUCKETS[index] if index < len(BUCKETS) else math.inf
        seen += count
    return None


def at_most_text(bound: float | None) -> str:
    """A quantile known only by its bucket, as the page shows it: ``≤ 5 ms``, ``> 30 s``."""
    if bound is None:
        return "-"
    if math.isinf(bound):
        return "> " + seconds_text(BUCKETS[-1])
    return "\u2264 " + seconds_text(bound)


def _whole(count: float) -> int:
    """A summed count as a whole number; 0 for one that is not finite (``int`` would
    raise), which the store's bounds keep from happening."""
    return int(count) if math.isfinite(count) else 0


def seconds_text(seconds: float | None, approximate: bool = False) -> str:
    """A duration as the page shows it: ``12 ms``, ``1.25 s``, or ``-`` for none; an
    estimate where the page tells exact figures apart reads ``≈ 12 ms``."""
    if seconds is None:
        return "-"
    text = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
    return "\u2248 " + text if approximate else text


def ratio_text(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.0f} %"


class _Tally:
    """Bucket counts per outcome and lock waits, summed over some minutes."""

    def __init__(self) -> None:
        self.buckets: dict[str, list[float]] = defaultdict(lambda: [0.0] * BUCKET_COUNT)
        self.lock: list[float] = [0.0] * BUCKET_COUNT
        #: The longest lock wait (None for minutes written before it was kept).
        self.lock_max: float | None = None
        #: Lock waits by the millisecond: ms -> how many (``LockWaitMillis``).
        self.lock_ms: dict[int, int] = defaultdict(int)
        self.locks_broken = 0
        self.slowest: dict[str, float] = {}

    def add_count(self, outcome: str, bucket: int, count: float) -> None:
        self.buckets[outcome][bucket] += count

    def add_max(self, outcome: str, seconds: float) -> None:
        self.slowest[outcome] = max(self.slowest.get(outcome, 0.0), seconds)

    def requests(self, outcome: str | None = None) -> int:
        if outcome is not None:
            return _whole(sum(self.buckets[outcome])) if outcome in self.buckets else 0
        return _whole(sum(sum(counts) for counts in self.buckets.values()))

    def figures(self, minutes: int) -> Figures:
        hits, rendered = self.requests(HIT), self.requests(RENDERED)
        served = hits + rendered
        requests = self.requests()

        def timing(outcome: str) -> Timing:
            counts = self.buckets.get(outcome, [0.0] * BUCKET_COUNT)
            slowest = self.slowest.get(outcome)
            return Timing(quantile(0.5, counts, slowest), quantile(0.95, counts, slowest), slowest)

        return Figures(
            minutes=minutes,
            requests=requests,
            per_minute=requests / minutes,
            hits=hits,
            rendered=rendered,
            client_errors=self.requests(CLIENT_ERROR),
            server_errors=self.requests(SERVER_ERROR),
            hit_ratio=hits / served if served else None,
            hit=timing(HIT),
            render=timing(RENDERED),
            lock_waits=_whole(sum(self.lock)),
            lock_p95=quantile(0.95, self.lock),
            lock_p95_at_most=bucket_bound(0.95, self.lock),
            lock=self.lock_timing(),
            locks_broken=self.locks_broken,
        )

    def lock_timing(self) -> Timing:
        """Lock waits' p50 and p95 and the longest wait. Exact (nearest rank, to the
        millisecond) when the millisecond counts hold every wait the buckets count;
        otherwise estimated from the buckets, capped by the longest wait, and marked
        ``approximate``. Without the longest (older minutes) only the buckets' bounds are
        known."""
        if self.lock_max is None:
            return Timing(None, None, None)
        most = self.lock_max
        waits = _whole(sum(self.lock))
        if waits and sum(self.lock_ms.values()) == waits:
            p50, p95 = nearest_rank(50, self.lock_ms), nearest_rank(95, self.lock_ms)
            if p50 is not None and p95 is not None:
                return Timing(min(p50 / 1000, most), min(p95 / 1000, most), most)
        p50_estimate, p95_estimate = quantile(0.5, self.lock, most), quantile(0.95, self.lock, most)
        return Timing(p50_estimate, p95_estimate, most, approximate=True)


@dataclass(frozen=True)
class Timing:
    """Seconds of one outcome (or of lock waits): p50 and p95, and the longest seen.

    Responses' p50 and p95 are bucket estimates; lock waits' are exact unless
    ``approximate``, which words them ``≈ 12 ms`` (the longest is always exact)."""

    p50: float | None
    p95: float | None
    max: float | None
    approximate: bool = False

    @property
    def p50_text(self) -> str:
        return seconds_text(self.p50, self.approximate)

    @property
    def p95_text(self) -> str:
        return seconds_text(self.p95, self.approximate)

    @property
    def text(self) -> str:
        """``p50 / p95 / max`` as the page shows them."""
        return " / ".join((self.p50_text, self.p95_text, seconds_text(self.max)))

    def as_dict(self) -> dict[str, Any]:
        return {
            name: None if value is None else round(value, 6)
            for name, value in (("p50", self.p50), ("p95", self.p95), ("max", self.max))
        } | {
            "p50_text": self.p50_text,
            "p95_text": self.p95_text,
            "max_text": seconds_text(self.max),
        }


@dataclass(frozen=True)
class Figures:
    """One layer (or one zoom of it) over one window."""

    minutes: int
    requests: int
    per_minute: float
    hits: int
    rendered: int
    client_errors: int
    server_errors: int
    #: Hits over hits and renders (errors left out); None when neither happened.
    hit_ratio: float | None
    hit: Timing
    render: Timing
    lock_waits: int
    lock_p95: float | None
    #: The bound of the bucket holding the p95 lock wait: lock waits have no recorded
    #: maximum to cap the estimate, so the page words this rather than ``lock_p95``.
    lock_p95_at_most: float | None = None
    #: Lock waits' p50 and p95 (exact to the millisecond, or bucket estimates capped by
    #: the exact longest wait and marked ``approximate``) and the longest; all None when
    #: no wait of the window recorded its longest.
    lock: Timing = Timing(None, None, None)
    #: Locks of dead holders broken by waiting requests.
    locks_broken: int = 0

    @property
    def lock_text(self) -> str:
        """``p50 / p95 / max`` of lock waits, or the p95's bucket bound without a maximum."""
        if self.lock.max is None:
            return at_most_text(self.lock_p95_at_most)
        return self.lock.text

    @property
    def errors(self) -> int:
        return self.client_errors + self.server_errors

    @property
    def cells(self) -> list[tuple[str, str]]:
        """The HTML table's cells for these figures: ``(class, text)`` per ``COLUMNS``."""
        return [(css, cell(self)) for _, css, cell in COLUMNS]

    def as_dict(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "requests": self.requests,
            "per_minute": round(self.per_minute, 2),
            "hits": self.hits,
            "rendered": self.rendered,
            "client_errors": self.client_errors,
            "server_errors": self.server_errors,
            "errors": self.errors,
            "hit_ratio": None if self.hit_ratio is None else round(self.hit_ratio, 4),
            "hit_ratio_text": ratio_text(self.hit_ratio),
            "hit": self.hit.as_dict(),
            "render": self.render.as_dict(),
            "lock_waits": self.lock_waits,
            "lock_p95": None if self.lock_p95 is None else round(self.lock_p95, 6),
            "lock_p95_text": at_most_text(self.lock_p95_at_most),
            "lock_wait": self.lock.as_dict()
            | {
                "text": self.lock_text,
                "exact": self.lock.max is not None and not self.lock.approximate,
            },
            "locks_broken": self.locks_broken,
        }


#: The HTML table's columns after the layer and the window, each a heading, a class
#: and the cell's text from a layer's ``Figures``: a figure shown on the page is one
#: entry here, and the template renders whatever is listed.
COLUMNS: tuple[tuple[str, str, Callable[[Figures], str]], ...] = (
    ("Requests", "tilestatus-requests", lambda f: str(f.requests)),
    ("Per minute", "", lambda f: f"{f.per_minute:.1f}"),
    ("Hit ratio", "tilestatus-hit-ratio", lambda f: ratio_text(f.hit_ratio)),
    ("Hits p50 / p95 / max", "", lambda f: f.hit.text),
    ("Renders p50 / p95 / max", "", lambda f: f.render.text),
    (
        "Errors (4xx / 5xx)",
        "tilestatus-errors",
        lambda f: f"{f.errors} ({f.client_errors} / {f.server_errors})",
    ),
    ("Lock waits p50 / p95 / max", "tilestatus-lock-waits", lambda f: f.lock_text),
    ("Locks broken", "tilestatus-locks-broken", lambda f: str(f.locks_broken)),
)


def column_headings() -> list[tuple[str, str]]:
    """The HTML table's headings and classes (see ``COLUMNS``)."""
    return [(heading, css) for heading, css, _ in COLUMNS]


@dataclass(frozen=True)
class ZoomFigures:
    """One zoom of a layer over the hour: requests by outcome (no timings: the statistics
    do not cross zoom with response time, to bound their size)."""

    zoom: int
    requests: int
    hits: int
    rendered: int
    client_errors: int
    server_errors: int

    @classmethod
    def of(cls, zoom: int, counts: Counter[str]) -> ZoomFigures:
        return cls(
            zoom,
            sum(counts.values()),
            counts[HIT],
            counts[RENDERED],
            counts[CLIENT_ERROR],
            counts[SERVER_ERROR],
        )

    @property
    def hit_ratio(self) -> float | None:
        served = self.hits + self.rendered
        return self.hits / served if served else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "zoom": zoom_text(self.zoom),
            "requests": self.requests,
            "hits": self.hits,
            "rendered": self.rendered,
            "client_errors": self.client_errors,
            "server_errors": self.server_errors,
            "errors": self.client_errors + self.server_errors,
            "hit_ratio": None if self.hit_ratio is None else round(self.hit_ratio, 4),
            "hit_ratio_text": ratio_text(self.hit_ratio),
        }


@dataclass(frozen=True)
class Sparkline:
    """Per-minute values over the hour as SVG polyline points, oldest first."""

    values: list[float]

    @property
    def peak(self) -> float:
        peak = max(self.values, default=0.0)
        return peak if math.isfinite(peak) else 0.0

    @property
    def points(self) -> str:
        peak = self.peak or 1.0
        step = SPARK_WIDTH / max(1, len(self.values) - 1)
        return " ".join(
            f"{index * step:.1f},{SPARK_HEIGHT - value / peak * (SPARK_HEIGHT - 2) - 1:.1f}"
            for index, value in enumerate(self.values)
        )


@dataclass(frozen=True)
class LayerTiles:
    """One layer's figures: per window, per zoom (over the hour), and sparklines."""

    layer: str
    windows: list[Figures]
    zooms: list[ZoomFigures]
    requests_line: Sparkline
    p95_line: Sparkline

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "windows": [figures.as_dict() for figures in self.windows],
            "zooms": [figures.as_dict() for figures in self.zooms],
            "sparkline": {
                "width": SPARK_WIDTH,
                "height": SPARK_HEIGHT,
                "requests": self.requests_line.points,
                "requests_peak": round(self.requests_line.peak, 2),
                "p95": self.p95_line.points,
                "p95_peak_text": seconds_text(self.p95_line.peak or None),
            },
        }


def zoom_text(zoom: int) -> str:
    return "none" if zoom == NO_ZOOM else str(zoom)


@dataclass(frozen=True)
class SlowTile:
    """One of the hour's slowest requests."""

    layer: str
    path: str
    seconds: float
    when: float
    host: str
    pid: int
    elapsed: float
    #: The tile's URL (the tile URLs' root + path).
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "path": self.path,
            "url": self.url,
            "seconds": round(self.seconds, 6),
            "seconds_text": seconds_text(self.seconds),
            "when": round(self.when, 3),
            "ago": nice_time(self.elapsed) + " ago",
            "host": self.host,
            "pid": self.pid,
        }


@dataclass(frozen=True)
class TilesReport:
    """The Tiles section."""

    windows: tuple[int, ...] = WINDOWS
    layers: list[LayerTiles] = field(default_factory=list)
    slowest: list[SlowTile] = field(default_factory=list)

    @property
    def headings(self) -> list[tuple[str, str]]:
        """The HTML table's headings after the layer and the window."""
        return column_headings()

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows": list(self.windows),
            "layers": [layer.as_dict() for layer in self.layers],
            "slowest": [slow.as_dict() for slow in self.slowest],
        }

    def text_lines(self) -> list[str]:
        """The section as text lines of at most 80 columns (text format, terminal view)."""
        lines = []
        header = (
            f"{'layer':<16} {'win':>4} {'req/min':>8} {'hit %':>6} "
            f"{'hit p95':>8} {'rnd p50':>8} {'rnd p95':>8} {'errors':>6} {'lock p95':>8}"
        )
        lines.append(header)
        for layer in self.layers:
            for figures in layer.windows:
                lines.append(
                    f"{clean(layer.layer, 16):<16} {str(figures.minutes) + 'm':>4} "
                    f"{figures.per_minute:>8.1f} {ratio_text(figures.hit_ratio):>6} "
                    f"{seconds_text(figures.hit.p95):>8} {seconds_text(figures.render.p50):>8} "
                    f"{seconds_text(figures.render.p95):>8} {figures.errors:>6} "
                    f"{_lock_p95_text(figures):>8}"
                )
        if not self.layers:
            lines.append("(no tile requests in the last hour)")
        if self.slowest:
            lines.append("slowest tiles of the hour:")
            for slow in self.slowest:
                lines.append(
                    f"  {seconds_text(slow.seconds):>8}  {clean(slow.path, 40):<40} "
                    f"{clean(slow.host, 12)}:{slow.pid}"
                )
        return lines


class _Hour:
    """The last ``MINUTES`` minutes' statistics summed per layer, as ``build_tiles``
    reads them."""

    def __init__(self, current: int) -> None:
        self.current = current
        #: layer -> window -> tally.
        self.windows: dict[str, dict[int, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
        #: layer -> zoom -> outcome counts (the hour).
        self.zooms: dict[str, dict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        #: layer -> minute -> tally.
        self.per_minute: dict[str, dict[int, _Tally]] = defaultdict(lambda: defaultdict(_Tally))

    def add_minute(
        self, minute: int, fields: dict[Statistic, float], maxima: dict[Statistic, float]
    ) -> None:
        """Add one minute's statistics and maxima; a minute outside the hour is left out."""
        age = self.current - minute
        if not 0 <= age < MINUTES:
            return
        spans = [span for span in WINDOWS if age < span]
        for record, value in fields.items():
            self._add(record, value, minute, spans)
        for record, seconds in maxima.items():
            if isinstance(record, ResponseSeconds):
                for span in spans:
                    self.windows[record.layer][span].add_max(record.outcome, seconds)
                self.per_minute[record.layer][minute].add_max(record.outcome, seconds)
            elif isinstance(record, LockWaitSeconds):
                for span in spans:
                    tally = self.windows[record.layer][span]
                    tally.lock_max = max(tally.lock_max or 0.0, seconds)

    def _add(self, record: Statistic, value: float, minute: int, spans: list[int]) -> None:
        match record:
            case RequestCount(layer=layer, zoom=zoom, outcome=outcome):
                self.zooms[layer][zoom][outcome] += _whole(value)
            case ResponseBucket(layer=layer, outcome=outcome, bucket=bucket):
                tallies = [self.per_minute[layer][minute]]
                tallies += [self.windows[layer][span] for span in spans]
                for tally in tallies:
                    tally.add_count(outcome, bucket, value)
            case LockWaitBucket(layer=layer, bucket=bucket):
                for span in spans:
                    self.windows[layer][span].lock[bucket] += value
            case LockWaitMillis(layer=layer, ms=ms):
                for span in spans:
                    self.windows[layer][span].lock_ms[ms] += _whole(value)
            case LocksBroken(layer=layer):
                for span in spans:
                    self.windows[layer][span].locks_broken += int(value)

    def layers(self) -> list[LayerTiles]:
        """Each layer's figures, in name order with ``OTHER_LAYER`` last."""
        minutes = range(self.current - MINUTES + 1, self.current + 1)
        layers = []
        for layer in sorted(self.windows, key=lambda name: (name == OTHER_LAYER, name)):
            series = [self.per_minute[layer].get(minute) for minute in minutes]
            zooms = self.zooms[layer]
            layers.append(
                LayerTiles(
                    layer=layer,
                    windows=[self.windows[layer][span].figures(span) for span in WINDOWS],
                    zooms=[ZoomFigures.of(zoom, zooms[zoom]) for zoom in sorted(zooms)],
                    requests_line=Sparkline([float(t.requests()) if t else 0.0 for t in series]),
                    p95_line=Sparkline([_p95_all(t) for t in series]),
                )
            )
        return layers


def build_tiles(data: StatMinutes, now: float, tile_root: str = "") -> TilesReport:
    """The Tiles section from the last ``MINUTES`` minutes of statistics."""
    hour = _Hour(int(now // 60))
    for minute, fields in data.fields.items():
        hour.add_minute(minute, fields, data.maxima.get(minute, {}))
    return TilesReport(WINDOWS, hour.layers(), _slowest(data.slowest, now, tile_root))


def tile_url(tile_root: str, path: str) -> str:
    """The link to a recorded tile path: always under the tile URLs' root, even for a
    path like ``//elsewhere.example/...`` (which alone would name another host)."""
    return tile_root + "/" + urllib.parse.quote(path.lstrip("/"), safe="/")


def _lock_p95_text(figures: Figures) -> str:
    if figures.lock.max is None:
        return at_most_text(figures.lock_p95_at_most)
    return figures.lock.p95_text


def _p95_all(tally: _Tally | None) -> float:
    if tally is None:
        return 0.0
    counts = [sum(column) for column in zip(*tally.buckets.values(), strict=True)]
    return quantile(0.95, counts, max(tally.slowest.values(), default=None)) or 0.0


def _slowest(entries: Iterable[SlowRequest], now: float, tile_root: str) -> list[SlowTile]:
    slow = []
    for entry in entries:
        path = clean(entry.path)
        slow.append(
            SlowTile(
                layer=clean(entry.layer),
                path=path,
                seconds=entry.seconds,
                when=entry.when,
                host=clean(entry.host),
                pid=entry.pid,
                elapsed=max(0.0, now - entry.when),
                url=tile_url(tile_root, path),
            )
        )
    return slow
