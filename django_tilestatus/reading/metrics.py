"""Prometheus metrics for the whole cluster, from what Redis holds.

A custom ``prometheus_client`` collector turns one read of the cumulative
statistics (``StatTotals``) and the status report (``Report``: processes and
their states, the same data the page shows) into metric families. Every
worker answers with the same figures, since all of them write to, and read
from, one Redis: no multiprocess directory, no port per worker.

Metrics (documented in docs/metrics.md):

- ``tilestatus_tile_requests_total{layer,zoom,outcome}`` (counter)
- ``tilestatus_tile_response_seconds{layer,outcome}`` (histogram)
- ``tilestatus_tile_lock_wait_seconds{layer}`` (histogram)
- ``tilestatus_stale_locks_broken_total{layer}`` (counter: metatile locks of dead holders
  broken by waiting requests)
- ``tilestatus_processes{host,state}`` (gauge)
- ``tilestatus_requests_in_flight{host}`` (gauge)
- ``tilestatus_stuck_requests{host}`` (gauge: running longer than ``BUSY_AFTER``)
- ``tilestatus_events_dropped_total{host}`` (counter)
- ``tilestatus_store_skipped_entries`` (gauge: what this read could not use)

Core module: imports the standard library, ``prometheus_client``, ``report``,
``statistics`` (``schema``'s records, ``tiles_report``) and ``storage.interface``
(its data classes) only.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from ..statistics.schema import (
    BUCKET_COUNT,
    BUCKETS,
    LocksBroken,
    LockWaitBucket,
    LockWaitSeconds,
    RequestCount,
    ResponseBucket,
    ResponseSeconds,
    SeedCount,
)
from ..statistics.tiles_report import zoom_text
from ..storage.interface import StatTotals
from .report import BUSY, STATES, Report

#: The ``le`` labels of the buckets, +Inf last.
LE = [str(floatToGoString(bound)) for bound in BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]


class ClusterCollector(Collector):
    """Metric families from one read of the statistics and one report."""

    def __init__(self, totals: StatTotals, report: Report, jobs: Sequence[Any] = ()):
        self.totals = totals
        self.report = report
        #: Seeding jobs (``seeding.jobs.Job``), newest first.
        self.jobs = jobs

    def collect(self) -> Iterator[Metric]:
        yield from self._tile_metrics()
        yield from self._seed_metrics()
        yield from self._process_metrics()
        dropped = CounterMetricFamily(
            "tilestatus_events_dropped",
            "Status events dropped because Redis was away and the queue was full.",
            labels=["host"],
        )
        for host, count in sorted(self.totals.dropped.items()):
            dropped.add_metric([host], count)
        yield dropped
        yield GaugeMetricFamily(
            "tilestatus_store_skipped_entries",
            "Entries in Redis this scrape could not read and skipped "
            "(keys of another type, values that do not parse).",
            value=self.totals.skipped + self.report.skipped,
        )

    def _tile_metrics(self) -> Iterator[Metric]:
        requests: dict[tuple[str, str, str], float] = defaultdict(float)
        response: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * BUCKET_COUNT)
        response_sum: dict[tuple[str, str], float] = defaultdict(float)
        lock: dict[tuple[str], list[float]] = defaultdict(lambda: [0.0] * BUCKET_COUNT)
        lock_sum: dict[tuple[str], float] = defaultdict(float)
        broken: dict[str, float] = defaultdict(float)
        for record, value in self.totals.fields.items():
            match record:
                case RequestCount(layer=layer, zoom=zoom, outcome=outcome):
                    requests[layer, zoom_text(zoom), outcome] += value
                case ResponseBucket(layer=layer, outcome=outcome, bucket=bucket):
                    response[layer, outcome][bucket] += value
                case ResponseSeconds(layer=layer, outcome=outcome):
                    response_sum[layer, outcome] += value
                case LockWaitBucket(layer=layer, bucket=bucket):
                    lock[(layer,)][bucket] += value
                case LockWaitSeconds(layer=layer):
                    lock_sum[(layer,)] += value
                case LocksBroken(layer=layer):
                    broken[layer] += value

        family = CounterMetricFamily(
            "tilestatus_tile_requests",
            "Tile requests by layer, zoom and outcome (hit, rendered, client_error, server_error).",
            labels=["layer", "zoom", "outcome"],
        )
        for labels, count in sorted(requests.items()):
            family.add_metric(list(labels), count)
        yield family
        yield self._histogram(
            "tilestatus_tile_response_seconds",
            "Tile response time in seconds by layer and outcome.",
            ["layer", "outcome"],
            response,
            response_sum,
        )
        yield self._histogram(
            "tilestatus_tile_lock_wait_seconds",
            "Seconds waited for the tile cache lock (requests that rendered) by layer.",
            ["layer"],
            lock,
            lock_sum,
        )
        stale = CounterMetricFamily(
            "tilestatus_stale_locks_broken",
            "Metatile cache locks of dead processes broken by waiting requests, by layer.",
            labels=["layer"],
        )
        for layer, count in sorted(broken.items()):
            stale.add_metric([layer], count)
        yield stale

    def _seed_metrics(self) -> Iterator[Metric]:
        seeded: dict[tuple[str, str, str], float] = defaultdict(float)
        for record, value in self.totals.fields.items():
            if isinstance(record, SeedCount):
                seeded[record.layer, zoom_text(record.zoom), record.outcome] += value
        family = CounterMetricFamily(
            "tilestatus_seeded_tiles",
            "Tiles seeding jobs had the layer render (or found cached after the lock), "
            "by layer, zoom and outcome; not counted in tilestatus_tile_requests.",
            labels=["layer", "zoom", "outcome"],
        )
        for labels, count in sorted(seeded.items()):
            family.add_metric(list(labels), count)
        yield family
        tiles = GaugeMetricFamily(
            "tilestatus_seed_job_tiles",
            "Tiles of recent seeding jobs by job, state and kind (done, skipped, failed, total).",
            labels=["job", "state", "kind"],
        )
        workers = GaugeMetricFamily(
            "tilestatus_seed_job_processes",
            "Processes working on a seeding job (seen in the last 30 seconds).",
            labels=["job"],
        )
        now = time.time()
        for job in self.jobs:
            for kind in ("done", "skipped", "failed", "total"):
                tiles.add_metric([job.id, job.state, kind], getattr(job, kind))
            workers.add_metric([job.id], len(job.working(now)))
        yield tiles
        yield workers

    @staticmethod
    def _histogram(
        name: str,
        documentation: str,
        labels: list[str],
        buckets: dict[Any, list[float]],
        sums: dict[Any, float],
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, documentation, labels=labels)
        for key in sorted(buckets):
            cumulative, running = [], 0.0
            for le, count in zip(LE, buckets[key], strict=True):
                running += count
                cumulative.append((le, running))
            family.add_metric(list(key), cumulative, sums.get(key, 0.0))
        return family

    def _process_metrics(self) -> Iterator[Metric]:
        report = self.report
        states: Counter[tuple[str, str]] = Counter()
        in_flight: Counter[str] = Counter()
        stuck: Counter[str] = Counter()
        hosts = set()
        for row in report.processes:
            hosts.add(row.host)
            states[row.host, row.state] += 1
            if row.state == BUSY:
                in_flight[row.host] += len(row.requests)
                stuck[row.host] += sum(1 for request in row.requests if request.slow)
        for hidden in report.hidden:
            hosts.add(hidden.host)
            states[hidden.host, hidden.state] += hidden.count
        processes = GaugeMetricFamily(
            "tilestatus_processes",
            "Processes seen within HIDE_AFTER by host and state (busy, idle, gone, exited).",
            labels=["host", "state"],
        )
        flight = GaugeMetricFamily(
            "tilestatus_requests_in_flight", "Tile requests under way by host.", labels=["host"]
        )
        slow = GaugeMetricFamily(
            "tilestatus_stuck_requests",
            "Tile requests running longer than BUSY_AFTER seconds by host.",
            labels=["host"],
        )
        for host in sorted(hosts):
            for state in STATES:
                processes.add_metric([host, state], states[host, state])
            flight.add_metric([host], in_flight[host])
            slow.add_metric([host], stuck[host])
        yield processes
        yield flight
        yield slow


def exposition(
    totals: StatTotals, report: Report, accept: str = "", jobs: Sequence[Any] = ()
) -> tuple[bytes, str]:
    """The metrics as the scraper asked (OpenMetrics when ``accept`` names it), and the
    content type to send."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(totals, report, jobs))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
