"""The statistics' records: the field names Redis holds, and parsing them back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_tilestatus.statistics import schema
from django_tilestatus.statistics.schema import (
    BUCKET_COUNT,
    LOCK_WAIT_MS_CAP,
    OUTCOMES,
    LockWaitBucket,
    LockWaitMillis,
    LockWaitSeconds,
    RequestCount,
    ResponseBucket,
    ResponseSeconds,
    SlowRequest,
    SlowTile,
    Statistic,
)

_layers = st.text(max_size=12)
_outcomes = st.sampled_from(OUTCOMES)
_buckets = st.integers(0, BUCKET_COUNT - 1)
records = st.one_of(
    st.builds(RequestCount, _layers, st.integers(-1, 40), _outcomes),
    st.builds(ResponseBucket, _layers, _outcomes, _buckets),
    st.builds(ResponseSeconds, _layers, _outcomes),
    st.builds(LockWaitBucket, _layers, _buckets),
    st.builds(LockWaitSeconds, _layers),
    st.builds(LockWaitMillis, _layers, st.integers(0, LOCK_WAIT_MS_CAP)),
)


@pytest.mark.parametrize(
    ("record", "name"),
    [
        (RequestCount("solid", 3, "hit"), '["n","solid",3,"hit"]'),
        (RequestCount("(other)", -1, "client_error"), '["n","(other)",-1,"client_error"]'),
        (ResponseBucket("solid", "rendered", 12), '["b","solid","rendered",12]'),
        (ResponseSeconds("sol|id", "server_error"), '["s","sol|id","server_error"]'),
        (LockWaitBucket("solid", 0), '["w","solid",0]'),
        (LockWaitSeconds("é"), '["ws","\\u00e9"]'),
        (LockWaitMillis("solid", 0), '["wm","solid",0]'),
        (LockWaitMillis("solid", 30000), '["wm","solid",30000]'),
    ],
)
def test_field_names_are_what_redis_already_holds(record: Statistic, name: str) -> None:
    assert record.field == name
    assert schema.parse(name) == record
    assert schema.parse(name.encode()) == record


@given(records)
def test_a_record_parses_back_from_its_field_name(record: Statistic) -> None:
    assert schema.parse(record.field) == record
    assert schema.parse(record.field.encode("utf-8")) == record
    assert json.loads(record.field) == [record.KIND, *record.labels()]


def _valid(record: Statistic) -> bool:
    labels = dict(zip(record.NAMES, record.labels(), strict=True))
    types_hold = all(
        type(label) is kind for label, kind in zip(record.labels(), record.SHAPE, strict=True)
    )
    return (
        types_hold
        and labels.get("outcome", "hit") in OUTCOMES
        and 0 <= labels.get("bucket", 0) < BUCKET_COUNT
        and 0 <= labels.get("ms", 0) <= LOCK_WAIT_MS_CAP
    )


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20) | st.floats() | st.sampled_from(OUTCOMES),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
_junk = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30),
    st.lists(st.one_of(st.sampled_from([*schema._KINDS, "x", ""]), _json_values), max_size=5).map(
        json.dumps
    ),
)


@given(_junk)
def test_any_field_name_parses_to_none_or_a_valid_record(name: Any) -> None:
    record = schema.parse(name)
    if record is not None:
        assert _valid(record)
        assert schema.parse(record.field) == record


@pytest.mark.parametrize(
    "name",
    [
        "not json",
        b"\xff\xfe",
        "{}",
        "[]",
        '"n"',
        "[[1]]",
        '["zz","solid"]',
        '["n","solid",3]',
        '["n","solid",3,"hit","extra"]',
        '["n","solid","3","hit"]',
        '["n","solid",3.0,"hit"]',
        '["n","solid",true,"hit"]',
        '["n","solid",3,"nope"]',
        '["b","solid","hit",13]',
        '["b","solid","hit",-1]',
        '["w","solid",99]',
        '["ws",1]',
        '["wm","solid",-1]',
        '["wm","solid",30001]',
        '["wm","solid",1.5]',
        '["wm","solid"]',
    ],
)
def test_what_this_app_did_not_write_parses_to_none(name: Any) -> None:
    assert schema.parse(name) is None


def test_only_the_lock_wait_milliseconds_are_kept_per_minute_alone() -> None:
    """Their fields are many: the cumulative hash, which nothing reads them from, has none."""
    assert [kind for kind, cls in schema._KINDS.items() if not cls.CUMULATIVE] == ["wm"]


def test_every_kind_is_registered_once() -> None:
    assert set(schema._KINDS) == {"n", "b", "s", "w", "ws", "wm", "lb", "seed", "seeds"}
    for kind, cls in schema._KINDS.items():
        assert kind == cls.KIND


@given(
    seconds=st.floats(0, 100),
    when=st.floats(0, 2e9),
    layer=_layers,
    zoom=st.integers(-1, 40),
    path=st.text(max_size=20),
    host=st.text(min_size=1, max_size=10),
    pid=st.integers(1, 2**31 - 1),
)
def test_a_slow_tile_is_read_back_as_written(
    seconds: float, when: float, layer: str, zoom: int, path: str, host: str, pid: int
) -> None:
    stored = SlowTile(seconds, when, layer, zoom, path).as_json(host, pid)
    assert SlowRequest.parse(stored) == SlowRequest(
        round(seconds, 6), round(when, 3), layer, zoom, path, host, pid
    )
    assert SlowRequest.parse(stored.encode()) == SlowRequest.parse(stored)


_SLOW = {"seconds": 1.5, "when": 10, "layer": "a", "zoom": 3, "path": "/a", "host": "h", "pid": 7}


@pytest.mark.parametrize(
    "member",
    [
        "{]",
        b"\xff",
        "[]",
        json.dumps({**_SLOW, "seconds": "x"}),
        json.dumps({**_SLOW, "zoom": True}),
        json.dumps({**_SLOW, "pid": 7.0}),
        json.dumps({key: value for key, value in _SLOW.items() if key != "host"}),
        json.dumps({**_SLOW, "when": float("inf")}),
        json.dumps({**_SLOW, "seconds": 10**400}),
    ],
)
def test_a_slow_request_that_does_not_parse_is_none(member: Any) -> None:
    assert SlowRequest.parse(member) is None


def test_a_slow_request_reads_whole_seconds_as_floats() -> None:
    parsed = SlowRequest.parse(json.dumps(_SLOW))
    assert parsed == SlowRequest(1.5, 10.0, "a", 3, "/a", "h", 7)
    assert parsed is not None and type(parsed.when) is float
