"""What recording and reading cost Redis, counted on a real server (never timed).

A command-counting connection (``benchmarks/counting.py``) sits under the app's
Redis client, so a change that puts Redis back on the request path, opens
connections per request, splits the writer's batch or makes reads grow with
the number of processes fails here, in CI, whatever the machine's speed.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django_redis import get_redis_connection

from benchmarks.counting import Counts, counting_connection
from django_tilestatus import recorder
from django_tilestatus.status import get_recent
from django_tilestatus.store import RedisStore

from .conftest import REAL_REDIS_URL

pytestmark = pytest.mark.redis

WARM = "/tiles/solid/3/1/2.png"


@pytest.fixture
def counts(settings: Any, real_redis: Any, real_prefix: str) -> Iterator[Counts]:
    """Point the app at the real Redis through a counting connection."""
    counts = Counts()
    # django-redis keeps one pool per URL: a URL of this test's own gets a fresh one.
    separator = "&" if "?" in REAL_REDIS_URL else "?"
    url = f"{REAL_REDIS_URL}{separator}client_name=tilestatus-counting-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {
        **settings.CACHES,
        "counted": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "CONNECTION_POOL_KWARGS": {"connection_class": counting_connection(counts)}
            },
        },
    }
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "CACHE_ALIAS": "counted",
        "KEY_PREFIX": real_prefix,
    }
    yield counts
    recorder.discard_recorder(flush=False)
    get_redis_connection("counted").connection_pool.disconnect()


def test_requests_never_talk_to_redis_and_one_batch_is_one_round_trip(
    client: Client, counts: Counts, real_redis: Any, real_prefix: str
) -> None:
    assert client.get(WARM).status_code == 200  # the process's first request: Created, connects
    writer = recorder.existing_recorder()
    assert writer is not None
    writer.stop()  # flushes; from here the test sends the batch itself, so counts are exact
    counts.reset()

    for _ in range(25):
        assert client.get(WARM).status_code == 200
    for x in range(5):  # cold: rendered, so the cache lock is recorded too
        assert client.get(f"/tiles/solid/9/{x}/{uuid.uuid4().int % 512}.png").status_code == 200

    # A request still under way when the batch goes: its in-flight entry rides along.
    under_way = writer.begin_request("/solid/9/9/9.png")

    assert (counts.connections, counts.round_trips, counts.commands) == (0, 0, 0)
    assert writer.pending == 25 * 2 + 5 * 4

    assert writer.flush()
    assert (counts.connections, counts.round_trips) == (0, 1)
    assert counts.names == Counter(
        # messages: LPUSH, LTRIM, EXPIRE, ZADD, EXPIRE (registry); requests in flight:
        # HSET, EXPIRE, ZADD, EXPIRE (busy set); served and failed: HINCRBY, EXPIRE.
        {"LPUSH": 1, "LTRIM": 1, "EXPIRE": 5, "ZADD": 2, "HSET": 1, "HINCRBY": 1}
    )
    store = RedisStore(real_redis, real_prefix)
    newest = store.read()[0].entries[0][1]
    assert newest.startswith("Finished /solid/9/4/")
    [(host, pid)] = [(log.host, log.pid) for log in store.read()]
    assert real_redis.hget(store.counts_key(host, pid), "served") == b"31"  # and the first
    assert b"/solid/9/9/9.png" in real_redis.hget(
        store.in_flight_key(host, pid), str(under_way.ident)
    )

    counts.reset()
    writer.end_request(under_way, recorder.SERVED)
    assert writer.flush()
    assert counts.round_trips == 1
    assert counts.names == Counter({"HDEL": 1, "ZREM": 1, "HINCRBY": 1, "EXPIRE": 1})
    assert not real_redis.exists(store.in_flight_key(host, pid))
    assert real_redis.zscore(store.busy_key(), f"{pid}:{host}") is None


def test_the_writer_reuses_its_connection(client: Client, counts: Counts) -> None:
    assert client.get(WARM).status_code == 200
    writer = recorder.existing_recorder()
    assert writer is not None and writer.flush(timeout=5)
    counts.reset()
    for _ in range(3):
        assert client.get(WARM).status_code == 200
        assert writer.flush(timeout=5)
    assert counts.connections == 0
    assert counts.round_trips == 3


def _register(store: RedisStore, processes: int) -> None:
    now = time.time()
    for pid in range(1000, 1000 + processes):
        store.write("tiles-1", pid, [(now, "Started /a/1/0/0.png"), (now, "Finished /a/1/0/0.png")])


@pytest.mark.parametrize("processes", [1, 10, 200])
def test_get_recent_takes_two_round_trips_whatever_the_number_of_processes(
    counts: Counts, real_redis: Any, real_prefix: str, processes: int
) -> None:
    _register(RedisStore(real_redis, real_prefix), processes)
    get_recent()  # connects
    counts.reset()

    found, messages = get_recent()

    assert len(found) == processes and len(messages) == 2 * processes
    assert (counts.connections, counts.round_trips) == (0, 2)
    assert counts.commands == 2 + processes
    assert not {"KEYS", "SCAN"} & set(counts.names)


def test_get_recent_with_nothing_recorded_is_one_round_trip(counts: Counts) -> None:
    get_recent()
    counts.reset()
    assert get_recent() == ([], [])
    assert counts.round_trips == 1


def test_a_stale_registry_entry_costs_one_more_round_trip_once(
    counts: Counts, real_redis: Any, real_prefix: str
) -> None:
    store = RedisStore(real_redis, real_prefix)
    _register(store, 3)
    get_recent()  # connects
    real_redis.delete(store.log_key("tiles-1", 1001))  # as if its list had expired
    trips = []
    for _ in range(2):
        counts.reset()
        found, _ = get_recent()
        trips.append(counts.round_trips)
    assert len(found) == 2
    assert trips == [3, 2]  # the first read drops the entry from the registry
