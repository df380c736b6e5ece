"""Lock waits' exact p50 / p95: counted by the millisecond, nearest rank, estimates marked."""

from __future__ import annotations

import math
import time

from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from django_tilestatus import runtime
from django_tilestatus.statistics import counting
from django_tilestatus.statistics.counting import TileStats
from django_tilestatus.statistics.schema import (
    LOCK_WAIT_MS_CAP,
    LOCK_WAIT_MS_KEPT,
    LockWaitBucket,
    LockWaitMillis,
    LockWaitSeconds,
    StatMinutes,
)
from django_tilestatus.statistics.tiles_report import build_tiles, nearest_rank
from django_tilestatus.storage import RedisStore

from .support.statistics import Noted

NOW = 1_800_000_030.0
MINUTE = int(NOW // 60)


def _count(stats: TileStats, waits: list[float], when: float = NOW) -> None:
    requests = [Noted("/solid/3/1/1.png", 200, False, 0.5, wait, when) for wait in waits]
    stats.count_ended(requests, lambda head: ("solid", 3))


def _millis(stats: TileStats) -> dict[int, int]:
    return {
        record.ms: count
        for minute in stats.take().counts.values()
        for record, count in minute.items()
        if isinstance(record, LockWaitMillis)
    }


@given(st.lists(st.integers(0, 40), min_size=1, max_size=80), st.integers(1, 100))
def test_nearest_rank_is_the_sorted_list_s_value_of_rank_ceil_p_n(
    values: list[int], percent: int
) -> None:
    ordered = sorted(values)
    counts: dict[int, float] = {}
    for value in values:
        counts[value] = counts.get(value, 0.0) + 1.0
    rank = math.ceil(percent * len(ordered) / 100)
    assert nearest_rank(percent, counts) == ordered[rank - 1]


def test_nearest_rank_of_1_to_20() -> None:
    counts = dict.fromkeys(range(1, 21), 1.0)
    assert (nearest_rank(50, counts), nearest_rank(95, counts), nearest_rank(100, counts)) == (
        10,
        19,
        20,
    )
    assert nearest_rank(50, {}) is None
    assert nearest_rank(50, {3: 0.0}) is None
    assert nearest_rank(1, {7: 1.0}) == 7


def test_waits_are_counted_by_the_rounded_millisecond_up_to_the_cap() -> None:
    stats = TileStats()
    _count(stats, [0.0004, 0.0005, 0.0012, 0.0012, 0.0126, 30.0, 30.0006, 45.0])
    assert _millis(stats) == {0: 1, 1: 3, 13: 1, LOCK_WAIT_MS_CAP: 1}


def test_a_process_counts_at_most_its_kept_milliseconds_per_minute_and_layer() -> None:
    stats = TileStats()
    _count(stats, [ms / 1000 for ms in range(1, LOCK_WAIT_MS_KEPT + 1)])
    _count(stats, [0.001, (LOCK_WAIT_MS_KEPT + 5) / 1000])  # one known, one past the bound
    millis = _millis(stats)
    assert len(millis) == LOCK_WAIT_MS_KEPT
    assert millis[1] == 2 and LOCK_WAIT_MS_KEPT + 5 not in millis
    # The next minute starts afresh; old minutes are forgotten.
    _count(stats, [(LOCK_WAIT_MS_KEPT + 5) / 1000], when=NOW + 60)
    assert _millis(stats) == {LOCK_WAIT_MS_KEPT + 5: 1}
    _count(stats, [0.002], when=NOW + 600)
    assert all(minute >= MINUTE + 8 for minute, _ in stats._millis)


def _one_to_twenty(store: RedisStore, now: float) -> None:
    stats = TileStats()
    _count(stats, [ms / 1000 for ms in range(1, 21)], when=now)
    store.write("tiles-1", 42, [(now, "Finished")], stats=stats.take())


def test_waits_of_1_to_20_ms_read_back_exact(store: RedisStore) -> None:
    """A round trip through the store (fakeredis and a real Redis)."""
    now = time.time()
    _one_to_twenty(store, now)
    minutes = store.stat_minutes(now, 60)
    [fields] = minutes.fields.values()
    millis = {r.ms: v for r, v in fields.items() if isinstance(r, LockWaitMillis)}
    assert millis == dict.fromkeys(range(1, 21), 1.0)
    # Per minute only: the cumulative hash has none.
    assert not [r for r in store.stat_totals().fields if isinstance(r, LockWaitMillis)]
    [layer] = build_tiles(minutes, now).layers
    for figures in layer.windows:
        assert (figures.lock.p50, figures.lock.p95, figures.lock.max) == (0.01, 0.019, 0.02)
        wait = figures.as_dict()["lock_wait"]
        assert wait["text"] == "10 ms / 19 ms / 20 ms" and wait["exact"] is True
        assert ("tilestatus-lock-waits", "10 ms / 19 ms / 20 ms") in figures.cells


def test_a_window_with_waits_left_out_is_worded_as_an_estimate() -> None:
    """A wait the milliseconds do not hold (past 30 s, past a process's bound, or an
    older minute's) makes its windows' p50 and p95 bucket estimates, marked ``≈``."""
    fields = {
        LockWaitBucket("solid", 0): 3.0,
        LockWaitBucket("solid", 12): 1.0,
        LockWaitMillis("solid", 2): 3.0,
    }
    data = StatMinutes({MINUTE: fields}, {MINUTE: {LockWaitSeconds("solid"): 31.0}}, [])
    [layer] = build_tiles(data, NOW).layers
    for figures in layer.windows:
        assert figures.lock.approximate
        wait = figures.as_dict()["lock_wait"]
        assert wait["exact"] is False
        assert wait["p50_text"].startswith("\u2248 ") and wait["p95_text"].startswith("\u2248 ")
        assert wait["max_text"] == "31.00 s"
    # An exact minute in the hour's window but not the 5 minutes' stays exact there.
    old = {LockWaitBucket("solid", 0): 1.0}
    exact = {LockWaitBucket("solid", 0): 1.0, LockWaitMillis("solid", 4): 1.0}
    data = StatMinutes(
        {MINUTE: exact, MINUTE - 10: old},
        {MINUTE: {LockWaitSeconds("solid"): 0.004}, MINUTE - 10: {LockWaitSeconds("solid"): 0.003}},
        [],
    )
    [layer] = build_tiles(data, NOW).layers
    five, hour = layer.windows
    assert five.lock_text == "4 ms / 4 ms / 4 ms"
    assert hour.lock_text.startswith("\u2248 ")


def test_the_page_json_and_text_show_exact_lock_waits(staff: Client) -> None:
    store = runtime.get_store()
    assert isinstance(store, RedisStore)
    _one_to_twenty(store, time.time())
    json_layers = staff.get("/tiles/status/?format=json").json()["tiles"]["layers"]
    [solid] = [layer for layer in json_layers if layer["layer"] == "solid"]
    for window in solid["windows"]:
        wait = window["lock_wait"]
        assert (wait["p50"], wait["p95"], wait["max"]) == (0.01, 0.019, 0.02)
        assert wait["text"] == "10 ms / 19 ms / 20 ms" and wait["exact"] is True
    html = staff.get("/tiles/status/").content.decode()
    assert "10 ms / 19 ms / 20 ms" in html
    text = staff.get("/tiles/status/?format=text").content.decode()
    [line, *_] = [line for line in text.splitlines() if line.startswith("solid ")]
    assert line.rstrip().endswith("19 ms")


def test_millis_rounds_half_up() -> None:
    assert [counting.millis(s) for s in (0.0004, 0.0005, 0.0199, 30.0)] == [0, 1, 20, 30000]
