"""Tile statistics: what a request counts, what Redis keeps, what the Tiles section shows."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from django_tilestatus.recording import recorder
from django_tilestatus.statistics import counting as stats
from django_tilestatus.statistics import schema
from django_tilestatus.statistics.counting import TileStats
from django_tilestatus.statistics.schema import (
    BUCKETS,
    NO_ZOOM,
    OTHER_LAYER,
    LockWaitBucket,
    LockWaitMillis,
    LockWaitSeconds,
    RequestCount,
    ResponseBucket,
    ResponseSeconds,
    Statistic,
)
from django_tilestatus.statistics.tiles_report import build_tiles, quantile, tile_url
from django_tilestatus.storage.redis_store import MINUTE_TTL, STATS_TTL, RedisStore

from .support.cold import COLD_LAYER, cold_tile
from .support.statistics import Noted, bucket_of, count
from .support.status import flush_events

pytestmark = pytest.mark.django_db


def totals_by_outcome(store: RedisStore) -> Counter[tuple[str, int, str]]:
    found: Counter[tuple[str, int, str]] = Counter()
    for record, value in store.stat_totals().fields.items():
        if isinstance(record, RequestCount):
            found[record.layer, record.zoom, record.outcome] += int(value)
    return found


def app_store() -> RedisStore:
    from django_tilestatus import runtime

    store = runtime.get_store()
    assert isinstance(store, RedisStore)
    return store


def test_a_request_is_a_render_then_a_hit_and_errors_are_counted_by_status(client: Client) -> None:
    tile = "/tiles" + cold_tile(12)
    assert client.get(tile).status_code == 200  # cold: the provider draws it
    assert client.get(tile).status_code == 200  # warm: cache.read gives the body
    assert client.get("/tiles/nowhere/12/7/1.png").status_code == 404
    assert client.get("/tiles/solid/zz/7/1.png").status_code == 400
    assert client.get("/tiles/broken/3/1/1.png").status_code == 500
    flush_events()
    assert totals_by_outcome(app_store()) == {
        (COLD_LAYER, 12, "rendered"): 1,
        (COLD_LAYER, 12, "hit"): 1,
        (OTHER_LAYER, NO_ZOOM, "client_error"): 1,
        ("solid", NO_ZOOM, "client_error"): 1,
        ("broken", 3, "server_error"): 1,
    }
    lock_waits = [
        value
        for record, value in app_store().stat_totals().fields.items()
        if isinstance(record, LockWaitBucket)
    ]
    assert sum(lock_waits) == 1  # only the render took the cache lock


def test_nothing_is_counted_when_recording_is_off(client: Client, settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "ENABLED": False}
    assert client.get("/tiles/solid/3/1/2.png").status_code == 200
    assert recorder.existing_recorder() is None
    assert app_store().stat_totals().fields == {}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("solid/3/1/2.png", ("solid", 3)),
        ("/solid/32/1/2.png", ("solid", 32)),
        ("solid/33/1/2.png", ("solid", NO_ZOOM)),
        ("solid/²/1/2.png", ("solid", NO_ZOOM)),
        ("solid/99999999999999999999/1/2.png", ("solid", NO_ZOOM)),
        ("solid/preview.html", ("solid", NO_ZOOM)),
        ("<script>/3/1/2.png", (OTHER_LAYER, NO_ZOOM)),
        ("unknown/3/1/2.png", (OTHER_LAYER, NO_ZOOM)),
        ("", (OTHER_LAYER, NO_ZOOM)),
    ],
)
def test_labels_come_from_the_configuration_never_from_the_path(
    path: str, expected: tuple[str, int]
) -> None:
    assert stats.tile_of(path, {"solid"}, 32) == expected


@given(
    path=st.lists(
        st.sampled_from(["solid", "", "3", "33", "²", "x.png", "/"]) | st.text(max_size=8),
        max_size=5,
    ).map("/".join)
)
def test_labels_are_worked_out_once_per_head_and_mean_the_same(path: str) -> None:
    """The writer labels a send's requests once per ``tile_head``: never a different label."""
    assert stats.tile_of(stats.tile_head(path), {"solid"}, 32) == stats.tile_of(path, {"solid"}, 32)


def test_outcomes_follow_the_status_and_the_cache() -> None:
    assert stats.outcome_of(200, True) == "hit"
    assert stats.outcome_of(200, False) == "rendered"
    assert stats.outcome_of(302, False) == "rendered"
    assert stats.outcome_of(404, True) == "client_error"
    assert stats.outcome_of(502, False) == "server_error"


def test_buckets_hold_their_upper_bound() -> None:
    assert bucket_of(0.005) == 0
    assert bucket_of(0.0051) == 1
    assert bucket_of(30.0) == len(BUCKETS) - 1
    assert bucket_of(31.0) == len(BUCKETS)  # +Inf


_seconds = st.one_of(
    st.sampled_from([0.0, *BUCKETS, 31.0]),  # bounds belong to their own bucket
    st.floats(min_value=0.0, max_value=40.0, allow_nan=False),
)
_ended_request = st.builds(
    Noted,
    path=st.sampled_from(
        [
            "/solid/3/1/1.png",
            "/solid/4/0/0.png",
            "/other/3/0/0.png",
            "/x",
            "//solid/3/1/1.png",
            "/solid/3/1.png",
            "solid/4/1/1.png",
            "/solid/preview.html",
        ]
    ),
    status=st.sampled_from([None, 200, 304, 404, 500]),
    from_cache=st.booleans(),
    seconds=_seconds,
    lock_wait=st.one_of(st.just(0.0), _seconds),
    ended=st.sampled_from([1_800_000_000.0, 1_800_000_059.9, 1_800_000_060.0]),
)


@given(st.lists(_ended_request, max_size=60))
def test_a_sends_requests_are_counted_as_one_by_one(requests: list[Any]) -> None:
    """The writer groups a send's requests before counting: the counts, sums, maxima (the
    slowest response and the longest lock wait), lock waits (by bucket and by the
    millisecond, up to 30 s) and slowest are those of counting each request on its own."""

    def labels(head: str) -> tuple[str, int]:
        return stats.tile_of(head, {"solid"}, 32)

    grouped = TileStats()
    grouped.count_ended(requests, labels)
    got = grouped.take()
    counts: dict[int, Counter[Statistic]] = {}
    sums: dict[int, dict[Statistic, float]] = {}
    maxima: dict[int, dict[Statistic, float]] = {}
    answered = [request for request in requests if request.status is not None]
    for request in answered:
        layer, zoom = labels(stats.tile_head(request.path))
        outcome = stats.outcome_of(request.status, request.from_cache)
        minute = int(request.ended // 60)
        minute_counts = counts.setdefault(minute, Counter())
        minute_sums = sums.setdefault(minute, {})
        minute_counts[RequestCount(layer, zoom, outcome)] += 1
        minute_counts[ResponseBucket(layer, outcome, bucket_of(request.seconds))] += 1
        response = ResponseSeconds(layer, outcome)
        minute_sums[response] = minute_sums.get(response, 0.0) + request.seconds
        slowest_seconds = maxima.setdefault(minute, {})
        slowest_seconds[response] = max(slowest_seconds.get(response, 0.0), request.seconds)
        if request.lock_wait > 0:
            minute_counts[LockWaitBucket(layer, bucket_of(request.lock_wait))] += 1
            if stats.millis(request.lock_wait) <= schema.LOCK_WAIT_MS_CAP:
                minute_counts[LockWaitMillis(layer, stats.millis(request.lock_wait))] += 1
            lock = LockWaitSeconds(layer)
            minute_sums[lock] = minute_sums.get(lock, 0.0) + request.lock_wait
            slowest_seconds[lock] = max(slowest_seconds.get(lock, 0.0), request.lock_wait)
    assert got.counts == {minute: dict(found) for minute, found in counts.items()}
    assert got.sums.keys() == sums.keys()
    for minute, found in got.sums.items():
        assert found == pytest.approx(sums[minute])
    assert got.maxima == maxima
    slowest = sorted((request.seconds for request in answered), reverse=True)[: schema.SLOWEST]
    assert sorted((slow.seconds for slow in got.slowest), reverse=True) == slowest


def requests_in(deltas: stats.Deltas) -> int:
    return sum(
        number
        for counts in deltas.counts.values()
        for record, number in counts.items()
        if isinstance(record, RequestCount)
    )


def lock_waits_in(deltas: stats.Deltas) -> int:
    return sum(
        number
        for counts in deltas.counts.values()
        for record, number in counts.items()
        if isinstance(record, LockWaitBucket)
    )


@given(st.lists(st.lists(_ended_request, max_size=25), max_size=6))
def test_the_slowest_of_a_minute_are_sent_whatever_the_sends(sends: list[list[Any]]) -> None:
    """Counted send by send, as the writer counts, the slowest requests sent for a minute
    are that minute's slowest, though a send skips what cannot be among them."""
    counted = TileStats()
    sent = []
    for requests in sends:
        for request in requests:
            request.ended = 1_800_000_000.0  # one minute
        counted.count_ended(requests, lambda head: stats.tile_of(head, {"solid"}, 32))
        sent += [slow.seconds for slow in counted.take().slowest]
    answered = [r.seconds for requests in sends for r in requests if r.status is not None]
    slowest = sorted(answered, reverse=True)[: schema.SLOWEST]
    assert sorted(sent, reverse=True)[: schema.SLOWEST] == slowest


def test_a_failed_send_gives_its_counts_back_and_the_slowest_stay_ten() -> None:
    counted = TileStats()
    for index in range(25):
        count(counted, "solid", 3, "hit", index / 100, 0.0, f"/solid/3/{index}/0.png")
    count(counted, "solid", 3, "rendered", 2.0, 0.5, "/solid/3/99/0.png")
    first = counted.take()
    assert requests_in(first) == 26
    assert sorted(slow.path for slow in first.slowest)[-1] == "/solid/3/99/0.png"
    assert len(first.slowest) == 10
    count(counted, "solid", 3, "hit", 0.001, 0.0, "/solid/3/0/0.png")
    counted.give_back(first)
    again = counted.take()
    assert requests_in(again) == 27
    assert len(again.slowest) == 10 and max(again.slowest).seconds == 2.0
    assert lock_waits_in(again) == 1
    assert not counted.take()


def test_quantiles_interpolate_within_buckets_and_never_pass_the_slowest() -> None:
    counts = [0.0] * schema.BUCKET_COUNT
    counts[bucket_of(0.03)] = 100  # all between 25 and 50 ms
    assert quantile(0.5, counts) == pytest.approx(0.0375)
    assert quantile(0.95, counts, slowest=0.04) == pytest.approx(0.04)
    assert quantile(0.5, [0.0] * schema.BUCKET_COUNT) is None
    counts[-1] = 1000  # beyond 30 s: reported as 30 s, as Prometheus does
    assert quantile(0.95, counts) == BUCKETS[-1]


def test_the_store_keeps_totals_minutes_maxima_and_slowest_with_ttls(store: RedisStore) -> None:
    counted = TileStats()
    for index in range(12):
        count(counted, "solid", 3, "hit", 0.002, 0.0, f"/solid/3/{index}/0.png")
    count(counted, "solid", 4, "rendered", 0.3, 0.02, "/solid/4/0/0.png")
    count(counted, "sol|id\n", 4, "rendered", 0.1, 0.0, "/sol|id\n/4/0/0.png")
    deltas = counted.take()
    deltas.dropped = 7
    store.write("tiles-1", 42, [(time.time(), "Finished /solid/4/0/0.png")], stats=deltas)
    store.write("tiles-2", 43, [], stats=stats.Deltas(dropped=2))

    totals = store.stat_totals()
    assert totals.dropped == {"tiles-1": 7, "tiles-2": 2}
    counts = {
        record.labels(): value
        for record, value in totals.fields.items()
        if isinstance(record, RequestCount)
    }
    assert counts == {
        ("solid", 3, "hit"): 12,
        ("solid", 4, "rendered"): 1,
        ("sol|id\n", 4, "rendered"): 1,
    }

    now = time.time()
    minutes = store.stat_minutes(now, 60)
    fields = minutes.fields[int(now // 60)]
    assert sum(1 for record in fields if isinstance(record, RequestCount)) == 3
    maxima = minutes.maxima[int(now // 60)]
    assert maxima[ResponseSeconds("solid", "rendered")] == pytest.approx(0.3)
    assert len(minutes.slowest) == 10
    assert minutes.slowest[0].path == "/solid/4/0/0.png"
    assert minutes.slowest[0].host == "tiles-1" and minutes.slowest[0].pid == 42

    client = store.client
    keys = list(client.scan_iter(match=f"{store.prefix}:*:stats:*"))
    assert len(keys) == 5  # total, dropped, and the minute's hash, maxima and slowest
    for key in keys:
        ttl = client.ttl(key)
        assert 0 < ttl <= STATS_TTL
        if b":minute:" in key or b":max:" in key or b":slow:" in key:
            assert ttl <= MINUTE_TTL


def test_what_another_program_wrote_under_the_prefix_is_skipped(store: RedisStore) -> None:
    minute = int(time.time() // 60)
    client = store.client
    good = RequestCount("solid", 3, "hit").field
    client.hset(
        store.stats_total_key(),
        mapping={
            good: 2,
            "not json": 1,
            '["n","solid",3,"nope"]': 1,
            '["b","solid","hit",99]': 1,
            '["n","solid","3","hit"]': 1,
            RequestCount("solid", 4, "hit").field: "many",
            ResponseSeconds("solid", "hit").field: "nan",
        },
    )
    client.zadd(store.stats_slow_key(minute), {"{]": 3, json.dumps({"seconds": "x"}): 2})
    assert store.stat_totals().fields == {RequestCount("solid", 3, "hit"): 2}
    assert store.stat_minutes(time.time(), 60).slowest == []


@pytest.mark.parametrize(
    ("root", "path", "url"),
    [
        ("/tiles", "/solid/5/1/1.png", "/tiles/solid/5/1/1.png"),
        ("", "//evil.example/x.png", "/evil.example/x.png"),
        ("", '/a"><script>/1/1/1.png', "/a%22%3E%3Cscript%3E/1/1/1.png"),
    ],
)
def test_a_slow_tile_links_under_the_tile_root_only(root: str, path: str, url: str) -> None:
    assert tile_url(root, path) == url


def test_the_tiles_section_has_windows_zooms_slowest_and_sparklines(store: RedisStore) -> None:
    now = time.time()
    counted = TileStats()
    for _ in range(30):
        count(counted, "solid", 3, "hit", 0.003, 0.0, "/solid/3/1/1.png")
    for _ in range(10):
        count(counted, "solid", 5, "rendered", 0.2, 0.01, "/solid/5/1/1.png")
    count(counted, "solid", 5, "client_error", 0.001, 0.0, "/solid/5/x/1.png")
    store.write("tiles-1", 42, [(now, "Finished")], stats=counted.take())

    section = build_tiles(store.stat_minutes(now, 60), now, tile_root="/tiles")
    (layer,) = section.layers
    five, hour = layer.windows
    assert (five.minutes, hour.minutes) == (5, 60)
    assert (hour.requests, hour.hits, hour.rendered, hour.errors) == (41, 30, 10, 1)
    assert hour.hit_ratio == pytest.approx(0.75)
    assert hour.per_minute == pytest.approx(41 / 60) and five.per_minute == pytest.approx(41 / 5)
    assert hour.render.max == pytest.approx(0.2)
    assert 0.1 < (hour.render.p95 or 0) <= 0.2 and (hour.hit.p50 or 1) <= 0.003
    assert hour.lock_waits == 10 and 0.005 < (hour.lock_p95 or 0) <= 0.01
    assert [(zoom.zoom, zoom.requests, zoom.hit_ratio) for zoom in layer.zooms] == [
        (3, 30, 1.0),
        (5, 11, 0.0),
    ]
    assert section.slowest[0].url == "/tiles/solid/5/1/1.png"
    data = section.as_dict()
    json.dumps(data, allow_nan=False)
    assert len(data["layers"][0]["sparkline"]["requests"].split()) == 60
    assert all(len(line) <= 80 for line in section.text_lines())
