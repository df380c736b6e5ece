"""The Tiles section words a figure known only by its bucket as the bound it has."""

from __future__ import annotations

import math
import time

from django_tilestatus.statistics.counting import TileStats
from django_tilestatus.statistics.schema import (
    LocksBroken,
    LockWaitBucket,
    RequestCount,
    StatMinutes,
)
from django_tilestatus.statistics.tiles_report import (
    at_most_text,
    bucket_bound,
    build_tiles,
    column_headings,
)
from django_tilestatus.storage import RedisStore

from .support.statistics import count


def test_lock_waits_of_a_millisecond_read_as_at_most_the_first_bucket(store: RedisStore) -> None:
    now = time.time()
    counted = TileStats()
    for _ in range(20):
        count(counted, "solid", 3, "rendered", 0.05, 0.001, "/solid/3/1/1.png")
    store.write("tiles-1", 42, [(now, "Finished")], stats=counted.take())
    [layer] = build_tiles(store.stat_minutes(now, 60), now).layers
    hour = layer.windows[-1]
    assert hour.as_dict()["lock_p95_text"] == "\u2264 5 ms"  # not "5 ms": no wait was that long
    # The longest wait is kept exactly, so the bucket estimates are capped by it.
    assert hour.as_dict()["lock_wait"]["text"] == "1 ms / 1 ms / 1 ms"
    assert ("tilestatus-lock-waits", "1 ms / 1 ms / 1 ms") in hour.cells
    assert ("tilestatus-locks-broken", "0") in hour.cells
    headings = [heading for heading, _ in column_headings()]
    assert headings[-2:] == ["Lock waits p50 / p95 / max", "Locks broken"]


def test_lock_waits_without_a_recorded_longest_read_as_their_bucket_bound() -> None:
    """Minutes written before the longest wait was kept show the p95's bucket bound."""
    minute = 1_800_000_000 // 60
    fields = {LockWaitBucket("solid", 0): 20.0, RequestCount("solid", 3, "rendered"): 20.0}
    data = StatMinutes({minute: fields}, {}, [])
    [layer] = build_tiles(data, minute * 60.0 + 1).layers
    hour = layer.windows[-1]
    assert ("tilestatus-lock-waits", "\u2264 5 ms") in hour.cells
    assert hour.lock.max is None


def test_broken_locks_are_counted_per_layer_and_window() -> None:
    now = 1_800_000_000.0
    minute = int(now // 60)
    data = StatMinutes(
        {minute: {LocksBroken("solid"): 2.0}, minute - 10: {LocksBroken("solid"): 3.0}}, {}, []
    )
    [layer] = build_tiles(data, now).layers
    assert [figures.locks_broken for figures in layer.windows] == [2, 5]
    assert layer.as_dict()["windows"][0]["locks_broken"] == 2


def test_bucket_bounds_and_their_words() -> None:
    assert bucket_bound(0.95, [0.0] * 13) is None
    assert bucket_bound(0.95, [10.0] + [0.0] * 12) == 0.005
    assert bucket_bound(0.5, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 8.0])
    assert math.isinf(bucket_bound(0.95, [0.0] * 12 + [3.0]) or 0.0)
    assert at_most_text(None) == "-"
    assert at_most_text(0.25) == "\u2264 250 ms"
    assert at_most_text(math.inf) == "> 30.00 s"
