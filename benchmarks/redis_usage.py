"""What serving tiles costs Redis: connections, commands and round trips per request,
how soon an event is visible, and memory per recorded process.

Counts come from ``INFO`` deltas around a sequential pass of a known number of
requests, with nothing else talking to the server meanwhile.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis

from django_tilestatus.statistics import schema
from django_tilestatus.statistics.counting import Deltas
from django_tilestatus.storage.redis_store import MINUTE_TTL, RedisStore
from tests.support.http import request

from .load import cold_path, warm_path
from .servers import Server

#: Seconds to let the background writers send what a pass queued.
DRAIN = 0.5


@dataclass
class Usage:
    server: str
    kind: str  # "warm" or "cold"
    requests: int
    events: int
    connections: int
    commands: int
    round_trips: int

    def per_request(self, value: int) -> float:
        return value / self.requests


def _counters(client: redis.Redis) -> tuple[int, int, dict[str, int]]:
    stats = client.info("stats")
    calls = {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in client.info("commandstats").items()
    }
    return int(stats["total_connections_received"]), int(stats["total_commands_processed"]), calls


def measure_pass(
    client: redis.Redis,
    server: Server,
    kind: str,
    count: int,
    row: int,
    events_per_request: int,
    pipelined: bool,
) -> Usage:
    """Serve ``count`` requests one after another and read what Redis saw.

    ``pipelined``: the server sends its events in pipelines of LPUSH first
    (one LPUSH per round trip), as this app does; otherwise every command is
    its own round trip, as in the original pattern.
    """
    # Steady state: every worker has served and connected. Concurrent, since sync workers
    # given one request at a time may leave all of them to the same worker.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda i: request(server.base, warm_path(server.prefix, i), timeout=30), range(80)
            )
        )
    time.sleep(DRAIN)
    _counters(client)  # connects this client first, so the pass counts none of its own
    _conn_0, cmd_0, calls_0 = _counters(client)
    conn_idle, cmd_idle, _ = _counters(client)  # what reading the counters itself costs
    overhead = cmd_idle - cmd_0
    for index in range(count):
        path = (
            warm_path(server.prefix, index)
            if kind == "warm"
            else cold_path(server.prefix, row, index)
        )
        answer = request(server.base, path, timeout=30)
        if answer.status != 200:
            raise RuntimeError(f"{server.name}: {path} answered {answer.status} {answer.error}")
    time.sleep(DRAIN)
    conn_1, cmd_1, calls_1 = _counters(client)
    commands = cmd_1 - cmd_idle - overhead
    connections = conn_1 - conn_idle
    own = {"info"}
    if pipelined:
        round_trips = calls_1.get("lpush", 0) - calls_0.get("lpush", 0)
    else:
        round_trips = sum(calls_1[n] - calls_0.get(n, 0) for n in calls_1 if n not in own)
    return Usage(
        server.name, kind, count, count * events_per_request, connections, commands, round_trips
    )


def visibility(store: RedisStore, server: Server, row: int, count: int) -> list[float]:
    """Seconds from a response until its ``Finished`` message can be read from Redis."""
    delays = []
    for index in range(count):
        path = cold_path(server.prefix, row, index)
        label = "Finished " + path.removeprefix(server.prefix)
        request(server.base, path, timeout=30)
        start = time.perf_counter()
        deadline = start + 5
        while time.perf_counter() < deadline:
            if any(m.startswith(label + " ") for log in store.read() for _, m in log.entries):
                break
            time.sleep(0.002)
        delays.append(time.perf_counter() - start)
    return delays


def memory_per_process(client: Any, processes: int = 1000, keep: int = 20) -> float:
    """Bytes of Redis memory per process with ``keep`` typical messages each."""
    client.flushdb()
    store = RedisStore(client, prefix="tilestatus", keep=keep, ttl=3600)
    before = int(client.info("memory")["used_memory"])
    now = time.time()
    for pid in range(10_000, 10_000 + processes):
        events = []
        for index in range(keep // 2):
            path = f"/osm/15/{5000 + index}/{12000 + pid % 1000}.png"
            events.append((now, f"Started {path}"))
            events.append((now, f"Finished {path} in 0.012 seconds"))
        store.write("tiles-1.example.org", pid, events)
    after = int(client.info("memory")["used_memory"])
    client.flushdb()
    return (after - before) / processes


@dataclass
class StatisticsMemory:
    """Redis memory the tile statistics hold at their bound (see docs/metrics.md)."""

    layers: int
    zooms: int
    #: Fields in the cumulative hash (and in each minute's hash, at most).
    fields: int
    cumulative_bytes: int
    minute_bytes: int
    #: The cumulative hash and MINUTE_TTL / 60 minutes of per-minute keys.
    total_bytes: int


def statistics_memory(client: Any, layers: int = 10, zooms: int = 21) -> StatisticsMemory:
    """``MEMORY USAGE`` of a day of traffic on ``layers`` layers, every field present.

    A day's cumulative hash, and the per-minute keys the TTL keeps (61 minutes),
    each minute with requests on every layer x zoom (0..zooms-1 and none) x
    outcome in every response and lock-wait bucket, maxima and 10 slowest
    tiles: the bound, whatever the request rate.
    """
    client.flushdb()
    store = RedisStore(client, prefix="tilestatus")
    now = time.time()
    current = int(now // 60)
    names = [f"layer-{index:02d}" for index in range(layers)]
    zoom_values = [*range(zooms), schema.NO_ZOOM]
    for minute in range(current - MINUTE_TTL // 60, current + 1):
        # 1000 requests in each zoom, outcome and bucket.
        counts: dict[schema.Statistic, int] = {}
        sums: dict[schema.Statistic, float] = {}
        maxima: dict[schema.Statistic, float] = {}
        for layer in names:
            for outcome in schema.OUTCOMES:
                for zoom in zoom_values:
                    counts[schema.RequestCount(layer, zoom, outcome)] = 1000 * schema.BUCKET_COUNT
                for bucket in range(schema.BUCKET_COUNT):
                    bucket_count = schema.ResponseBucket(layer, outcome, bucket)
                    counts[bucket_count] = 1000 * len(zoom_values)
                sums[schema.ResponseSeconds(layer, outcome)] = 123.456
                maxima[schema.ResponseSeconds(layer, outcome)] = 12.5
            for bucket in range(schema.BUCKET_COUNT):
                counts[schema.LockWaitBucket(layer, bucket)] = 10
            sums[schema.LockWaitSeconds(layer)] = 4.5
        deltas = Deltas({minute: counts}, {minute: sums}, {minute: maxima})
        for index in range(schema.SLOWEST):
            path = f"/{names[0]}/18/{131000 + index}/87000.png"
            when = minute * 60 + index
            deltas.slowest.append(schema.SlowTile(20.0 + index, when, names[0], 18, path))
        store.write("tiles-1.example.org", 12345, [], stats=deltas)

    def usage(key: str) -> int:
        return int(client.memory_usage(key, samples=0) or 0)

    cumulative = usage(store.stats_total_key())
    minute = sum(
        usage(key(current))
        for key in (store.stats_minute_key, store.stats_max_key, store.stats_slow_key)
    )
    total = sum(usage(key.decode()) for key in client.scan_iter(match="tilestatus:*:stats:*"))
    client.flushdb()
    outcomes, buckets = len(schema.OUTCOMES), schema.BUCKET_COUNT
    # Per layer: requests by zoom and outcome, by outcome and bucket, seconds by outcome,
    # lock waits by bucket, lock seconds.
    fields = layers * (len(zoom_values) * outcomes + outcomes * buckets + outcomes + buckets + 1)
    return StatisticsMemory(layers, zooms, fields, cumulative, minute, total)
