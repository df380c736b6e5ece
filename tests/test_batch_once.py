"""Each batch of the writer applied once and whole, past a key of the wrong type.

On fakeredis (which runs the batch script with lupa) and on a real Redis.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import redis

from django_tilestatus.recording.recorder import QueuedEvents, Recorder
from django_tilestatus.statistics.schema import RequestCount
from django_tilestatus.storage import BatchNumber, InFlightUpdate, RedisStore, StoreRejected
from django_tilestatus.storage.batch_script import MAX_VALUES
from django_tilestatus.storage.redis_store import refused_for_good

HOST, PID = "web1", 4242


class LosingClient:
    """A client whose next ``lose`` batch scripts fail with a timeout: after Redis ran
    them (the reply was lost) or before (the request was)."""

    def __init__(self, client: Any, lose: int = 0, after: bool = True) -> None:
        self.client = client
        self.lose = lose
        self.after = after
        self.scripts = 0

    def _run(self, name: str, *args: Any) -> Any:
        self.scripts += 1
        if self.lose and not self.after:
            self.lose -= 1
            raise redis.TimeoutError("Timeout reading from socket")
        reply = getattr(self.client, name)(*args)
        if self.lose:
            self.lose -= 1
            raise redis.TimeoutError("Timeout reading from socket")
        return reply

    def evalsha(self, *args: Any) -> Any:
        return self._run("evalsha", *args)

    def eval(self, *args: Any) -> Any:
        return self._run("eval", *args)


def serve(recorder: Recorder, paths: list[str]) -> None:
    for path in paths:
        request = recorder.begin_request(path)
        recorder.finish_request(request, 0.01, 200)


def requests_counted(store: RedisStore) -> int:
    return sum(
        int(value)
        for record, value in store.stat_totals().fields.items()
        if isinstance(record, RequestCount)
    )


def dump(client: Any, store: RedisStore) -> dict[str, Any]:
    """Every key of the store's prefix with what it holds."""
    held: dict[str, Any] = {}
    for raw in client.scan_iter(match=f"{store.prefix}:*", count=500):
        key = raw.decode()
        kind = client.type(key).decode()
        if kind == "list":
            held[key] = client.lrange(key, 0, -1)
        elif kind == "hash":
            held[key] = client.hgetall(key)
        elif kind == "zset":
            held[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            held[key] = client.get(key)
    return held


def test_a_batch_sent_again_changes_nothing(store: RedisStore, redis_client: Any) -> None:
    recorder = Recorder(lambda: store, HOST, PID, interval=3600)
    serve(recorder, ["/a/1/0/0.png", "/a/1/0/1.png"])
    request = recorder.begin_request("/a/1/1/1.png")  # in flight: its hash and busy entry
    recorder._drain_ended(time.time())
    batch = recorder._take_batch(store, time.time())
    assert batch is not None
    args = (HOST, PID, QueuedEvents(batch.items)[:], batch.update)

    assert store.write(*args, stats=batch.deltas, batch=batch.number)
    first = dump(redis_client, store)
    assert requests_counted(store) == 2
    assert not store.write(*args, stats=batch.deltas, batch=batch.number)
    assert dump(redis_client, store) == first
    # After a newer batch, an older one changes nothing either.
    newer = BatchNumber(batch.number.writer, batch.number.number + 1)
    assert store.write(HOST, PID, [(time.time(), "Lock attempted")], batch=newer)
    second = dump(redis_client, store)
    assert second != first
    assert not store.write(*args, stats=batch.deltas, batch=batch.number)
    assert dump(redis_client, store) == second
    recorder.end_request(request, "served")
    recorder.stop(flush=False)


@pytest.mark.parametrize("after", [True, False], ids=["reply lost", "request lost"])
def test_a_batch_whose_send_timed_out_is_counted_once(
    store: RedisStore, redis_client: Any, after: bool
) -> None:
    losing = LosingClient(redis_client, lose=2, after=after)
    flaky = RedisStore(losing, store.prefix, keep=store.keep, ttl=store.ttl)
    recorder = Recorder(lambda: flaky, HOST, PID, interval=3600)
    serve(recorder, [f"/a/3/{i}/0.png" for i in range(3)])
    assert not recorder.flush()
    serve(recorder, ["/a/3/9/9.png"])  # newer: waits until the first batch is in
    assert not recorder.flush()
    assert recorder.flush()  # the first batch again, same number, then the newer one
    assert losing.scripts == 4
    assert requests_counted(store) == 4
    assert redis_client.hget(store.counts_key(HOST, PID), "served") == b"4"
    [log] = store.read()
    messages = [message for _, message in log.entries]
    assert len(messages) == len(set(messages)) == 5  # keep=5 of Created and 4 x 2
    assert messages[0].startswith("Finished /a/3/9/9.png")
    recorder.stop(flush=False)


def test_a_wrong_typed_statistics_key_is_skipped_and_logged_once(
    store: RedisStore, redis_client: Any, caplog: Any
) -> None:
    redis_client.set(store.stats_total_key(), "x")
    recorder = Recorder(lambda: store, HOST, PID, interval=3600)
    with caplog.at_level(logging.WARNING):
        for round_ in range(3):
            serve(recorder, [f"/secret/5/{round_}/{i}.png" for i in range(3)])
            assert recorder.flush()  # nothing held to send again
            assert recorder._unsent is None
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1, warnings
    assert "stats:total" in warnings[0] and "WRONGTYPE" in warnings[0]
    assert "/secret/" not in warnings[0] and store.prefix not in warnings[0]
    # The bad key is left as it is (with a TTL, so it goes); the rest was written.
    assert redis_client.get(store.stats_total_key()) == b"x"
    assert redis_client.ttl(store.stats_total_key()) > 0
    minute = store.stat_minutes(time.time(), 2)
    assert (
        sum(
            int(value)
            for fields in minute.fields.values()
            for record, value in fields.items()
            if isinstance(record, RequestCount)
        )
        == 9
    )
    assert redis_client.hget(store.counts_key(HOST, PID), "served") == b"9"
    assert store.read()[0].entries[0][1].startswith("Finished /secret/5/2/2.png")

    # Once the key is gone the statistics are written again; a new fault is logged again.
    redis_client.delete(store.stats_total_key())
    serve(recorder, ["/a/1/0/0.png"])
    assert recorder.flush()
    assert requests_counted(store) == 1
    redis_client.set(store.stats_total_key(), "x")
    with caplog.at_level(logging.WARNING):
        serve(recorder, ["/a/1/0/0.png"])
        assert recorder.flush()
    assert len(caplog.records) == 2
    recorder.stop(flush=False)


def test_a_wrong_typed_applied_key_is_replaced(store: RedisStore, redis_client: Any) -> None:
    redis_client.hset(store.applied_key(HOST, PID), "x", "1")
    now = time.time()
    assert store.write(HOST, PID, [(now, "Created")], batch=BatchNumber("w", 1))
    assert redis_client.get(store.applied_key(HOST, PID)) == b"w 1"
    assert not store.write(HOST, PID, [(now, "Created")], batch=BatchNumber("w", 1))


def test_a_new_writer_under_the_same_pid_starts_its_own_numbers(store: RedisStore) -> None:
    now = time.time()
    assert store.write(HOST, PID, [(now, "Created")], batch=BatchNumber("old", 900))
    assert store.write(HOST, PID, [(now + 1, "Created")], batch=BatchNumber("new", 1))
    assert [message for _, message in store.read()[0].entries] == ["Created", "Created"]
    assert 0 < store.client.ttl(store.applied_key(HOST, PID)) <= store.ttl


def test_long_batches_are_split_into_commands_the_script_can_unpack(
    store: RedisStore, redis_client: Any
) -> None:
    many = 2 * MAX_VALUES + 500
    big = RedisStore(redis_client, store.prefix, keep=many, ttl=600)
    now = time.time()
    fields = {str(i): f"entry {i}" for i in range(many)}
    update = InFlightUpdate(set=fields, oldest=now)
    events = [(now + i / 1e6, f"event {i}") for i in range(many + 10)]
    assert big.write(HOST, PID, events, update, batch=BatchNumber("w", 1))
    entries = big.read()[0].entries
    assert [message for _, message in entries] == [
        f"event {i}" for i in reversed(range(10, many + 10))
    ]
    assert redis_client.hlen(big.in_flight_key(HOST, PID)) == many


class ScriptlessRedis:
    """A server that does not run scripts (fakeredis without lupa says so too)."""

    def evalsha(self, *args: Any) -> None:
        raise redis.ResponseError("unknown command 'evalsha', with args beginning with: ")


def test_a_write_redis_never_takes_is_dropped_and_logged_once(caplog: Any) -> None:
    store = RedisStore(ScriptlessRedis())
    with pytest.raises(StoreRejected):
        store.write(HOST, PID, [(time.time(), "Created")])
    recorder = Recorder(lambda: store, HOST, PID, interval=3600)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            serve(recorder, ["/a/1/0/0.png"])
            assert recorder.flush()  # not held: it would never be taken
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "dropped a batch" in warnings[0], warnings
    assert recorder.dropped == 7  # Created, and Started and Finished three times
    recorder.stop(flush=False)


@pytest.mark.parametrize(
    ("error", "for_good"),
    [
        (redis.ConnectionError("Connection refused"), False),
        (redis.TimeoutError("Timeout reading from socket"), False),
        (redis.exceptions.OutOfMemoryError("command not allowed when used memory"), False),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), False),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), False),
        (redis.ResponseError("BUSY Redis is busy running a script."), False),
        (redis.ResponseError("MISCONF Redis is configured to save RDB snapshots"), False),
        (redis.exceptions.NoPermissionError("this user has no permissions"), False),
        (redis.exceptions.ClusterDownError("The cluster is down"), False),
        (redis.ResponseError("unknown command 'evalsha'"), True),
        (redis.ResponseError("Error running script (call to f_0): @user_script:1: x"), True),
        (
            redis.exceptions.ClusterCrossSlotError("Keys in request don't hash to the same slot"),
            True,
        ),
    ],
)
def test_which_refusals_are_sent_again(error: Exception, for_good: bool) -> None:
    assert refused_for_good(error) is for_good
