"""Whatever bytes lie under the prefix, every reader answers and says what it skipped.

Each key family the app reads (``RedisStore``'s key methods) is written with values of
every Redis type, and numbers and texts no writer of the app would send (huge, NaN,
infinite, junk JSON, bytes that are not UTF-8). The page (HTML, JSON, text), the metrics,
``tilestatus_top`` and ``tilestatus_purge`` must answer, in strict JSON and parseable
metrics, and never call a Redis that answered unreachable.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from django_tilestatus import conf, status
from django_tilestatus.statistics.schema import (
    LockWaitBucket,
    RequestCount,
    ResponseBucket,
    ResponseSeconds,
)
from django_tilestatus.storage import RedisStore
from django_tilestatus.storage.redis_store import MAX_STAT

from .support.status import write_busy, write_log

pytestmark = pytest.mark.django_db

FORMATS = ("html", "json", "text")
#: Processes the hostile keys name: one of another host, one of this host (whose PID
#: is not running: the page judges it gone).
OTHER = ("tiles-2", 22)


def here() -> tuple[str, int]:
    return conf.get_config().host, 2**31 - 7


def strict_json(body: bytes | str) -> Any:
    """RFC 8259 JSON: ``NaN`` and ``Infinity`` are refused, as the browser's parser does."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(body, parse_constant=refuse)


def family_keys(store: RedisStore, minute: int) -> dict[str, list[str]]:
    """Every key the app reads, by family."""
    processes = [OTHER, here()]
    return {
        "registry": [store.registry_key()],
        "busy": [store.busy_key()],
        "log": [store.log_key(*p) for p in processes],
        "inflight": [store.in_flight_key(*p) for p in processes],
        "counts": [store.counts_key(*p) for p in processes],
        "stats:total": [store.stats_total_key()],
        "stats:dropped": [store.stats_dropped_key()],
        "stats:minute": [store.stats_minute_key(m) for m in (minute, minute - 1)],
        "stats:max": [store.stats_max_key(m) for m in (minute, minute - 1)],
        "stats:slow": [store.stats_slow_key(m) for m in (minute, minute - 1)],
    }


def check_every_reader(staff: Client) -> dict[str, Any]:
    """Every format, the metrics, top and purge answer; returns the page's JSON."""
    data: dict[str, Any] = {}
    for fmt in FORMATS:
        response = staff.get(f"/tiles/status/?format={fmt}")
        assert response.status_code == 200, (fmt, response.content[:300])
        if fmt == "json":
            data = strict_json(response.content)
    busy = [row for row in data["processes"] if row["requests"]]
    for row in busy[:2]:
        response = staff.get(f"/tiles/status/?format=json&stacks={row['host']}:{row['pid']}")
        assert response.status_code == 200
        strict_json(response.content)
    response = staff.get("/tiles/metrics")
    assert response.status_code == 200, response.content[:300]
    families = {f.name for f in text_string_to_metric_families(response.content.decode())}
    assert "tilestatus_store_skipped_entries" in families
    out = io.StringIO()
    call_command("tilestatus_top", "--once", stdout=out)
    assert "tilestatus_top" in out.getvalue()
    out = io.StringIO()
    call_command("tilestatus_top", "--once", "--json", stdout=out)
    assert isinstance(strict_json(out.getvalue())["skipped"], int)
    out = io.StringIO()
    call_command("tilestatus_purge", "--dry-run", stdout=out)
    return data


# -- random values of random types, in every family ---------------------------------

NUMBERS = st.sampled_from(
    [
        *("1e308", "-1e308", "1e400", "nan", "NaN", "inf", "-inf", "Infinity", "-1", "0"),
        *("1.5", str(2**64), "9" * 400, str(MAX_STAT), "1e-320", " 3", "0x10"),
    ]
)


@st.composite
def junk_json(draw: st.DrawFn) -> str:
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),  # NaN and infinities included: json.dumps writes them as such
        st.text(max_size=10),
    )
    value = draw(
        st.recursive(leaf, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner))
    )
    return json.dumps(value)


def stat_field() -> st.SearchStrategy[str]:
    """Field names this app writes, so hostile numbers reach the sums."""
    records = st.one_of(
        st.builds(
            RequestCount,
            st.sampled_from(["osm", "(other)"]),
            st.integers(-1, 20),
            st.sampled_from(["hit", "rendered", "server_error"]),
        ),
        st.builds(
            ResponseBucket, st.just("osm"), st.sampled_from(["hit", "rendered"]), st.integers(0, 12)
        ),
        st.builds(ResponseSeconds, st.just("osm"), st.sampled_from(["hit", "rendered"])),
        st.builds(LockWaitBucket, st.just("osm"), st.integers(0, 12)),
    )
    return records.map(lambda record: record.field)


def in_flight_entry() -> st.SearchStrategy[str]:
    frame = st.lists(st.one_of(st.text(max_size=5), st.integers(), st.floats()), max_size=5)
    return st.fixed_dictionaries(
        {"path": st.text(max_size=20), "started": st.one_of(st.floats(), st.integers())},
        optional={
            "since": st.floats(),
            "phase": st.text(max_size=6),
            "lock": st.one_of(st.text(max_size=5), st.integers()),
            "stack": st.lists(frame, max_size=4),
        },
    ).map(json.dumps)


def messages() -> st.SearchStrategy[str]:
    stamps = st.one_of(st.just(f"{time.time():.6f}"), NUMBERS)
    return st.builds(lambda s, m: f"{s} {m}", stamps, st.text(max_size=30))


SCALARS = st.one_of(
    st.binary(max_size=24),
    NUMBERS,
    junk_json(),
    messages(),
    in_flight_entry(),
    stat_field(),
    st.sampled_from([f"{OTHER[1]}:{OTHER[0]}", "22:tiles-2", "0:x", "1:", ":"]),
)
SCORES = st.one_of(
    st.floats(allow_nan=False),
    st.just(time.time()),
    st.sampled_from([1e308, -1e308, float("inf"), float("-inf")]),
)


@st.composite
def hostile_value(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["string", "list", "hash", "set", "zset"]))
    if kind == "string":
        return kind, draw(SCALARS)
    if kind in ("list", "set"):
        return kind, draw(st.lists(SCALARS, min_size=1, max_size=5))
    if kind == "hash":
        fields = st.one_of(stat_field(), SCALARS)
        return kind, draw(st.dictionaries(fields, SCALARS, min_size=1, max_size=5))
    return kind, draw(st.dictionaries(SCALARS, SCORES, min_size=1, max_size=5))


def put(client: Any, key: str, kind: str, value: Any) -> None:
    client.delete(key)
    if kind == "string":
        client.set(key, value)
    elif kind == "list":
        client.rpush(key, *value)
    elif kind == "hash":
        client.hset(key, mapping=value)
    elif kind == "set":
        client.sadd(key, *value)
    else:
        client.zadd(key, value)


def clear(store: RedisStore) -> None:
    client = store.client
    keys = list(client.scan_iter(match=f"{store.prefix}:*", count=500))
    if keys:
        client.delete(*keys)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_whatever_the_keys_hold_every_reader_answers(staff: Client, data: st.DataObject) -> None:
    store: RedisStore = status.get_store()  # type: ignore[assignment]
    clear(store)
    # A good process beside the hostile keys, so the page has something to show.
    write_log(store, "tiles-elsewhere", 4242, (1, "Started /solid/1/0/0.png"))
    write_busy(store, "tiles-elsewhere", 4243, "/solid/2/0/0.png", 30)
    families = family_keys(store, int(time.time() // 60))
    chosen = data.draw(st.lists(st.sampled_from(sorted(families)), min_size=1, unique=True))
    for family in chosen:
        for key in families[family]:
            if data.draw(st.booleans(), label=f"write {key}"):
                kind, value = data.draw(hostile_value(), label=key)
                put(store.client, key, kind, value)
    check_every_reader(staff)


# -- explicit regressions, on fakeredis and on the real Redis -----------------------


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> RedisStore:
    """The app's store, on fakeredis and on the real Redis (a prefix of the test's own)."""
    if request.param == "real":
        request.getfixturevalue("use_real_redis")
    return status.get_store()  # type: ignore[return-value]


def test_bucket_sums_of_1e308_in_two_minutes_are_skipped_not_summed_to_infinity(
    staff: Client, store: RedisStore
) -> None:
    minute = int(time.time() // 60)
    for m in (minute, minute - 1):
        fields = {ResponseBucket("osm", "rendered", bucket).field: "1e308" for bucket in (3, 12)}
        fields[ResponseSeconds("osm", "rendered").field] = "1e308"
        fields[RequestCount("osm", 3, "rendered").field] = "1e308"
        store.client.hset(store.stats_minute_key(m), mapping=fields)
        store.client.hset(store.stats_total_key(), mapping=fields)
        store.client.zadd(store.stats_max_key(m), {ResponseSeconds("osm", "rendered").field: 1e308})
    data = check_every_reader(staff)
    assert data["skipped"] >= 10
    assert "could not be read and were skipped" in data["skipped_text"]


def test_the_largest_statistics_kept_sum_to_finite_figures(
    staff: Client, store: RedisStore
) -> None:
    """Every bucket of every minute at ``MAX_STAT``: the sums over the hour stay finite."""
    minute = int(time.time() // 60)
    fields = {
        ResponseBucket("osm", o, b).field: MAX_STAT for o in ("hit", "rendered") for b in range(13)
    }
    fields |= {LockWaitBucket("osm", b).field: MAX_STAT for b in range(13)}
    fields[RequestCount("osm", 3, "hit").field] = MAX_STAT
    for m in range(minute - 59, minute + 1):
        store.client.hset(store.stats_minute_key(m), mapping=fields)
    store.client.hset(store.stats_total_key(), mapping=fields)
    data = check_every_reader(staff)
    assert data["skipped"] == 0
    [layer] = data["tiles"]["layers"]
    hour = layer["windows"][1]
    assert hour["requests"] > 0 and 0 <= hour["hit_ratio"] <= 1
    assert hour["render"]["p95"] is not None and hour["lock_p95"] is not None


FAMILIES: dict[str, Callable[[RedisStore], str]] = {
    "registry": lambda store: store.registry_key(),
    "busy": lambda store: store.busy_key(),
    "log": lambda store: store.log_key(*OTHER),
    "inflight": lambda store: store.in_flight_key(*OTHER),
    "counts": lambda store: store.counts_key(*OTHER),
    "stats:total": lambda store: store.stats_total_key(),
    "stats:dropped": lambda store: store.stats_dropped_key(),
    "stats:minute": lambda store: store.stats_minute_key(int(time.time() // 60)),
    "stats:max": lambda store: store.stats_max_key(int(time.time() // 60)),
    "stats:slow": lambda store: store.stats_slow_key(int(time.time() // 60)),
}
#: A type the family's reads refuse (``WRONGTYPE``).
WRONG = {
    "registry": "string",
    "busy": "string",
    "log": "hash",
    "inflight": "list",
    "counts": "zset",
    "stats:total": "list",
    "stats:dropped": "set",
    "stats:minute": "string",
    "stats:max": "hash",
    "stats:slow": "list",
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_key_of_the_wrong_type_is_skipped_and_counted_not_redis_unavailable(
    staff: Client, store: RedisStore, family: str
) -> None:
    # A process of another host with a request in flight, and one of its messages.
    write_log(store, OTHER[0], OTHER[1], (1, "Started /solid/1/0/0.png"))
    write_busy(store, OTHER[0], OTHER[1], "/solid/1/0/0.png", 30)
    key = FAMILIES[family](store)
    kind = WRONG[family]
    value: Any = {"a": 1.0} if kind in ("hash", "zset") else ["x"]
    put(store.client, key, kind, "x" if kind == "string" else value)
    data = check_every_reader(staff)
    # The cumulative statistics are the metrics' only; any other family costs the
    # page its own entry, and the registry names the processes: without it, nothing
    # is listed.
    assert data["skipped"] >= (0 if family.startswith(("stats:total", "stats:dropped")) else 1)
    if family != "registry":
        assert [(row["host"], row["pid"]) for row in data["processes"]] == [OTHER]
    out = io.StringIO()
    call_command("tilestatus_purge", stdout=out)
    if family == "registry":
        assert "Skipped 1 unreadable entry" in out.getvalue()
    response = staff.get("/tiles/metrics")
    skipped = {
        sample.name: sample.value
        for f in text_string_to_metric_families(response.content.decode())
        for sample in f.samples
    }["tilestatus_store_skipped_entries"]
    # The metrics read no minute's statistics.
    assert skipped >= (0 if family in ("stats:minute", "stats:max", "stats:slow") else 1)
