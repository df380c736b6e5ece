"""What recording and reading cost Redis, counted on a real server (never timed).

A command-counting connection (``tests/support/counting.py``) sits under the app's
Redis client, so a change that puts Redis back on the request path, opens
connections per request, splits the writer's batch or makes reads grow with
the number of processes fails here, in CI, whatever the machine's speed.

Each test runs on the shared Redis through a django-redis cache, and on a
three-master Redis Cluster of its own through the app's ``RedisCluster``
client: there too a batch and a read stay one round trip each, because every
key of the app lives in one slot. A batch is one ``EVALSHA`` of the batch script
(``storage/batch_script.py``); the commands the script runs are counted from its
arguments.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django_redis import get_redis_connection

from django_tilestatus import conf, connection
from django_tilestatus.recording import recorder
from django_tilestatus.statistics.schema import LockWaitBucket, RequestCount
from django_tilestatus.status import get_recent, get_store
from django_tilestatus.storage import RedisStore
from django_tilestatus.storage.batch_script import BatchCommands

from .support.cold import COLD_LAYER, cold_tile
from .support.counting import Counts, counting_connection
from .support.real_redis import REAL_REDIS_URL, delete_prefixed, new_prefix, real_redis_client
from .support.redis_topology import ClusterGroup, cluster_group
from .support.statistics import pending

pytestmark = [
    pytest.mark.redis,
    # On one pytest-xdist worker, so the cluster (a module fixture) is started once.
    pytest.mark.xdist_group("redis_cost"),
]

WARM = "/tiles/solid/3/1/2.png"


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    """One three-master cluster for this module's cluster runs."""
    workdir: Path = tmp_path_factory.mktemp("cluster")
    with cluster_group(workdir) as group:
        yield group


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.reliability)])
def real_redis(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The shared Redis, or a Redis Cluster started for this module (a client to seed it)."""
    if request.param == "cluster":
        client = request.getfixturevalue("redis_cluster").client()
    else:
        client = real_redis_client()
    yield client
    client.close()


@pytest.fixture
def real_prefix(real_redis: Any) -> Iterator[str]:
    prefix = new_prefix()
    yield prefix
    delete_prefixed(real_redis, prefix)


@pytest.fixture
def counts(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    real_redis: Any,
    real_prefix: str,
) -> Iterator[Counts]:
    """Point the app at the real Redis (or cluster) through a counting connection."""
    counts = Counts()
    if hasattr(real_redis, "get_nodes"):  # a RedisCluster: the app's own client
        cluster = request.getfixturevalue("redis_cluster")
        settings.TILESTATUS = {
            **settings.TILESTATUS,
            "REDIS_URL": cluster.url,
            "REDIS_CLUSTER": True,
            "KEY_PREFIX": real_prefix,
        }
        client = connection.client_for(
            conf.get_config(), connection_class=counting_connection(counts)
        )
        monkeypatch.setattr(connection, "get_client", lambda: client)  # the app's, counted
        yield counts
        recorder.discard_recorder(flush=False)
        client.close()
        return
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


def _script_commands(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The commands each batch script runs (the wire shows one ``EVALSHA``), counted."""
    names = Counter[str]()
    run = RedisStore._run_script

    def counted(store: RedisStore, commands: BatchCommands, arguments: list[Any]) -> Any:
        ops, index = commands.commands, 0
        while index < len(ops):
            names[ops[index]] += 1
            index += 3 + ops[index + 2]
        return run(store, commands, arguments)

    monkeypatch.setattr(RedisStore, "_run_script", counted)
    return names


def test_requests_never_talk_to_redis_and_one_batch_is_one_round_trip(
    client: Client,
    counts: Counts,
    real_redis: Any,
    real_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert client.get(WARM).status_code == 200  # the process's first request: Created, connects
    writer = recorder.existing_recorder()
    assert writer is not None
    writer.stop()  # flushes; from here the test sends the batch itself, so counts are exact
    store = RedisStore(real_redis, real_prefix)
    before = _request_totals(store)
    scripted = _script_commands(monkeypatch)
    counts.reset()

    for _ in range(25):
        assert client.get(WARM).status_code == 200
    cold = [cold_tile(9) for _ in range(5)]  # rendered, so the cache lock is recorded too
    for path in cold:
        assert client.get("/tiles" + path).status_code == 200

    # A request still under way when the batch goes: its in-flight entry rides along.
    under_way = writer.begin_request("/solid/9/9/9.png")

    assert (counts.connections, counts.round_trips, counts.commands) == (0, 0, 0)
    # Started and Finished of each request, the cache lock's two of each render, and
    # the Started of the request under way.
    assert pending(writer) == 25 * 2 + 5 * 4 + 1

    assert writer.flush()
    # The messages and the statistics of all 30 requests: one round trip, one script.
    assert (counts.connections, counts.round_trips) == (0, 1)
    assert counts.names == Counter({"EVALSHA": 1})
    for name, count in {"LPUSH": 1, "LTRIM": 1, "HSET": 1}.items():
        assert scripted[name] == count
    assert set(scripted) == {
        *("LPUSH", "LTRIM", "EXPIRE", "ZADD"),  # the messages and the registry
        "HSET",  # the request in flight (and ZADD, EXPIRE: the busy set)
        *("HINCRBY", "HINCRBYFLOAT", "ZREMRANGEBYRANK"),  # served counts, the statistics
    }
    newest, before_it = (message for _, message in store.read()[0].entries[:2])
    assert newest == "Started /solid/9/9/9.png"
    assert before_it.startswith(f"Finished {cold[-1]} in ")
    added = _request_totals(store) - before
    assert added == {"solid 3 hit": 25, f"{COLD_LAYER} 9 rendered": 5, "lock waits": 5}
    [(host, pid)] = [(log.host, log.pid) for log in store.read()]
    assert real_redis.hget(store.counts_key(host, pid), "served") == b"31"  # and the first
    assert b"/solid/9/9/9.png" in real_redis.hget(
        store.in_flight_key(host, pid), str(under_way.ident)
    )

    counts.reset()
    scripted.clear()
    under_way.seconds = 0.25
    writer.end_request(under_way, recorder.SERVED)
    assert writer.flush()
    assert counts.round_trips == 1
    # Its Finished (and the registry), its entry gone, its served count (never
    # counted in the statistics: it has no status).
    assert scripted == Counter(
        {"LPUSH": 1, "LTRIM": 1, "ZADD": 1, "HDEL": 1, "ZREM": 1, "HINCRBY": 1, "EXPIRE": 3}
    )
    assert store.read()[0].entries[0][1] == "Finished /solid/9/9/9.png in 0.250 seconds"
    assert not real_redis.exists(store.in_flight_key(host, pid))
    assert real_redis.zscore(store.busy_key(), f"{pid}:{host}") is None


def _request_totals(store: RedisStore) -> Counter[str]:
    """Cumulative requests by layer, zoom and outcome, and lock waits."""
    totals = Counter[str]()
    for record, value in store.stat_totals().fields.items():
        if isinstance(record, RequestCount):
            totals[f"{record.layer} {record.zoom} {record.outcome}"] += int(value)
        if isinstance(record, LockWaitBucket):
            totals["lock waits"] += int(value)
    return totals


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


def test_deleting_many_processes_is_one_round_trip(
    counts: Counts, real_redis: Any, real_prefix: str
) -> None:
    """What the purge command and the status page do with dead processes."""
    _register(RedisStore(real_redis, real_prefix), 20)
    store = get_store()
    assert len(store.registry().entries) == 20  # connects
    counts.reset()
    assert store.delete([("tiles-1", pid) for pid in range(1000, 1015)]) == 15
    assert counts.round_trips == 1
    assert len(RedisStore(real_redis, real_prefix).registry().entries) == 5
    assert not real_redis.exists(store.log_key("tiles-1", 1000))
