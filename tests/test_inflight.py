"""Requests in flight: one entry per thread, its phase, its stack, and how it ends."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from django.test import Client

from django_tilestatus import connection
from django_tilestatus.recording import inflight, recorder
from django_tilestatus.recording.inflight import Request, capture_stack, decode
from django_tilestatus.recording.recorder import active
from django_tilestatus.serving.tilestache_cache import InstrumentedCache
from django_tilestatus.storage import RedisStore

from .support import wait_until
from .support.status import make_recorder, recorded_messages
from .test_recorder import FlakyStore, run_and_exit


def test_each_request_is_set_while_in_flight_and_deleted_once_ended() -> None:
    store = FlakyStore()
    writer = make_recorder(store, interval=3600)
    request = writer.begin_request("/a/1/0/0.png")
    assert writer.flush()
    [update] = store.updates
    field = str(threading.get_ident())
    assert list(update.set) == [field] and update.delete == []
    assert update.oldest == request.started
    assert json.loads(update.set[field])["path"] == "/a/1/0/0.png"

    assert writer.flush()
    assert len(store.updates) == 1  # nothing changed: nothing sent

    writer.end_request(request, recorder.SERVED)
    assert writer.flush()
    assert store.updates[-1].delete == [field] and store.updates[-1].oldest is None
    assert (store.updates[-1].served, store.updates[-1].failed) == (1, 0)
    writer.stop()


def test_four_threads_are_four_entries_and_one_ending_leaves_the_others() -> None:
    store = FlakyStore()
    writer = make_recorder(store, interval=3600)
    release = [threading.Event() for _ in range(4)]
    begun = threading.Barrier(5)

    def serve(index: int) -> None:
        request = writer.begin_request(f"/a/9/{index}/0.png")
        begun.wait()
        release[index].wait(10)
        writer.end_request(request, recorder.SERVED)

    threads = [threading.Thread(target=serve, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    begun.wait()
    assert writer.flush()
    paths = {json.loads(value)["path"] for value in store.updates[-1].set.values()}
    assert paths == {f"/a/9/{index}/0.png" for index in range(4)}

    release[2].set()
    threads[2].join(10)
    assert writer.flush()
    assert len(store.updates[-1].delete) == 1 and store.updates[-1].oldest is not None
    for event in release:
        event.set()
    for thread in threads:
        thread.join(10)
    writer.stop()


def hang_here_for_the_test(stop: threading.Event) -> None:
    stop.wait(10)


def test_the_writer_takes_the_stack_of_a_request_past_busy_after_once() -> None:
    store = FlakyStore()
    writer = make_recorder(store, interval=0.02, busy_after=0.1)
    stop = threading.Event()

    def serve() -> None:
        request = writer.begin_request("/a/1/0/0.png")
        hang_here_for_the_test(stop)
        writer.end_request(request, recorder.SERVED)

    thread = threading.Thread(target=serve)
    thread.start()

    def stacks() -> list[Any]:
        return [
            json.loads(value)["stack"]
            for update in list(store.updates)
            for value in update.set.values()
            if "stack" in json.loads(value)
        ]

    wait_until(stacks, seconds=5, interval=0.01)
    [stack] = stacks()
    functions = [frame[2] for frame in stack]
    assert functions[-1] == "wait" and "hang_here_for_the_test" in functions
    innermost_here = stack[functions.index("hang_here_for_the_test")]
    assert innermost_here[0].endswith("test_inflight.py") and innermost_here[3] == "stop.wait(10)"
    time.sleep(0.1)
    assert len(stacks()) == 1  # taken once
    stop.set()
    thread.join(10)
    writer.stop()


def test_a_stack_is_bounded_innermost_kept() -> None:
    ready, stop = threading.Event(), threading.Event()
    idents = []

    def deep(depth: int) -> None:
        if depth:
            deep(depth - 1)
        else:
            idents.append(threading.get_ident())
            ready.set()
            stop.wait(10)

    thread = threading.Thread(target=deep, args=(200,))
    thread.start()
    assert ready.wait(10)
    stack = capture_stack(idents[0])
    stop.set()
    thread.join(10)
    assert stack is not None
    assert len(stack) <= inflight.MAX_FRAMES
    assert len(json.dumps(stack)) <= inflight.MAX_STACK_BYTES
    assert stack[-1][2] == "wait" and stack[-3][2] == "deep"
    assert capture_stack(idents[0]) is None  # the thread has gone


class LockingCache:
    """A cache whose lock waits for the test, noting the phase seen meanwhile."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, str]] = []
        self.release = threading.Event()

    def read(self, layer: Any, coord: Any, format: str) -> None:
        return None

    def lock(self, layer: Any, coord: Any, format: str) -> None:
        current = inflight.current()
        assert current is not None
        self.phases.append((current.phase, current.lock))

    def unlock(self, layer: Any, coord: Any, format: str) -> None:
        pass


class Layer:
    def name(self) -> str:
        return "osm"


class Coord:
    zoom, column, row = 15, 5248, 12656


def test_the_cache_wrapper_tells_the_phase_and_the_metatile_locked() -> None:
    writer = active()
    assert writer is not None
    inner = LockingCache()
    cache = InstrumentedCache(inner)
    request = writer.begin_request("/osm/15/5255/12664.png")
    assert request.phase == inflight.STARTING
    assert cache.read(Layer(), Coord(), "PNG") is None
    assert request.phase == inflight.RENDERING  # a miss: lock or render next
    cache.lock(Layer(), Coord(), "PNG")
    assert inner.phases == [(inflight.WAITING_LOCK, "osm 15/5248/12656")]
    assert request.phase == inflight.RENDERING and request.locked
    cache.read(Layer(), Coord(), "PNG")  # TileStache reads again under the lock
    assert request.phase == inflight.RENDERING
    cache.unlock(Layer(), Coord(), "PNG")
    writer.finish_request(request, 0.1, 200)
    assert inflight.current() is None


def test_the_mapnik_seam_sets_its_phase_and_does_nothing_outside_a_request() -> None:
    inflight.waiting_for_mapnik_lock()  # no request: nothing to do, no error
    writer = active()
    assert writer is not None
    request = writer.begin_request("/a/1/0/0.png")
    inflight.waiting_for_mapnik_lock()
    assert request.phase == inflight.WAITING_MAPNIK
    inflight.mapnik_lock_held()
    assert request.phase == inflight.RENDERING
    writer.finish_request(request, 0.1, 200)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (b'{"path":"/a","started":1.5,"phase":"lock","since":2,"lock":"a 1/0/0"}', True),
        ('{"path":"/a","started":1}', True),
        (b"\xff", False),
        ("not json", False),
        ("[1, 2]", False),
        ('{"path": 3, "started": 1}', False),
        ('{"path": "/a", "started": NaN}', False),
        ('{"path": "/a", "started": 1e999}', False),
        ('{"path": "/a", "started": true}', False),
    ],
)
def test_decode_takes_only_what_the_writer_writes(raw: Any, ok: bool) -> None:
    assert (decode(raw) is not None) is ok


def test_decode_keeps_well_formed_frames_and_an_unknown_phase_reads_as_starting() -> None:
    raw = json.dumps(
        {"path": "/a", "started": 1, "phase": "?", "stack": [["f.py", 3, "g", "x()"], ["bad"]]}
    )
    entry = decode(raw)
    assert entry is not None and entry.phase == inflight.STARTING
    assert entry.stack is not None and [f.function for f in entry.stack] == ["g"]


def test_a_base_exception_records_an_error_naming_it_and_goes_on(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt):
        client.get("/tiles/interrupt/1/0/0.png")
    messages = recorded_messages()
    assert messages[-2] == "Started /interrupt/1/0/0.png"
    assert messages[-1].startswith("Error: KeyboardInterrupt after ")
    assert inflight.current() is None


def test_a_request_still_in_flight_at_exit_stays_and_an_aborted_one_is_put_back(
    real_redis: Any, real_prefix: str
) -> None:
    output = run_and_exit(
        real_prefix,
        """
        import threading
        from django_tilestatus.recording.recorder import active
        recorder = active()
        first = recorder.begin_request("/solid/1/0/0.png")
        recorder.finish_request(first, 0.01, 200)
        aborted = recorder.begin_request("/hang/3/1/2.png")
        recorder.abort_request(aborted, SystemExit(1), 3.0)
        print(recorder.pid)
        """,
    )
    store = RedisStore(real_redis, prefix=real_prefix)
    pid = int(output)
    [log] = store.read()
    assert [m for _, m in log.entries][:2] == [
        "Destroyed",
        "Error: SystemExit: 1 after 3.000 seconds",
    ]
    values = real_redis.hvals(store.in_flight_key("exit-test", pid))
    assert [json.loads(value)["path"] for value in values] == ["/hang/3/1/2.png"]
    assert real_redis.zscore(store.busy_key(), f"{pid}:exit-test") is not None
    assert real_redis.hmget(store.counts_key("exit-test", pid), "served", "failed") == [b"1", b"1"]


def test_a_clean_exit_with_nothing_in_flight_clears_the_entries(
    real_redis: Any, real_prefix: str
) -> None:
    output = run_and_exit(
        real_prefix,
        """
        import time
        from django_tilestatus.recording.recorder import active
        recorder = active()
        request = recorder.begin_request("/solid/1/0/0.png")
        recorder.flush()  # in flight when written
        recorder.finish_request(request, 0.01, 200)
        print(recorder.pid)
        """,
    )
    store = RedisStore(real_redis, prefix=real_prefix)
    pid = int(output)
    assert not real_redis.exists(store.in_flight_key("exit-test", pid))
    assert real_redis.zscore(store.busy_key(), f"{pid}:exit-test") is None


def test_a_request_object_is_small_and_encodes_compactly() -> None:
    request = Request(1, "/a/1/0/0.png", 1700000000.123456)
    assert json.loads(request.encode()) == {
        "path": "/a/1/0/0.png",
        "started": 1700000000.123,
        "phase": "start",
        "since": 1700000000.123,
    }
    # What every request starts with stays on the class: entering one sets four attributes.
    assert set(vars(request)) == {"ident", "path", "started", "since"}


def test_at_most_max_in_flight_are_written_the_oldest_first() -> None:
    store = FlakyStore()
    writer = make_recorder(store, interval=3600)
    fakes = [Request(10_000 + n, f"/a/9/{n}/0.png", time.time() - 100 + n) for n in range(40)]
    try:
        for request in fakes:
            inflight._table[request.ident] = request
        assert writer.flush()
        [update] = store.updates
        assert len(update.set) == inflight.MAX_IN_FLIGHT
        assert update.oldest == fakes[0].started
        assert "/a/9/0/0.png" in update.set[str(fakes[0].ident)]
    finally:
        for request in fakes:
            inflight.end(request)
        writer.stop()


def test_a_long_hung_request_keeps_its_keys_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FlakyStore()
    store.ttl = 3  # type: ignore[misc]  # refreshed every TTL/3 seconds
    writer = make_recorder(store, interval=3600)
    request = writer.begin_request("/a/1/0/0.png")
    assert writer.flush()
    assert store.updates[-1].touch is not None  # first written: seen now
    sent = len(store.updates)
    assert writer.flush() and len(store.updates) == sent  # nothing new: nothing sent
    later = time.time() + 2
    monkeypatch.setattr(recorder.time, "time", lambda: later)
    assert writer.flush()
    assert store.updates[-1].touch == later and list(store.updates[-1].set) == [str(request.ident)]
    writer.end_request(request, recorder.SERVED)
    writer.stop()


@pytest.mark.parametrize("backend", ["fake", pytest.param("real", marks=pytest.mark.redis)])
def test_the_page_read_drops_busy_entries_whose_requests_have_expired(
    backend: str, request: pytest.FixtureRequest
) -> None:
    client = request.getfixturevalue("real_redis") if backend == "real" else connection.get_client()
    prefix = request.getfixturevalue("real_prefix") if backend == "real" else "tilestatus-busy"
    store = RedisStore(client, prefix=prefix)
    now = time.time()
    store.write("web1", 7, [(now, "Started /a/1/0/0.png")])
    client.zadd(store.busy_key(), {"7:web1": now - 5, "8:web1": now - 9})  # no hashes
    first = Request(1, "/a/1/0/0.png", now - 5)
    client.hset(store.in_flight_key("web1", 7), "1", first.encode())
    snapshot = store.snapshot(now, recent=10)
    assert list(snapshot.in_flight) == [("web1", 7)] and snapshot.busy_total == 2
    assert client.zrange(store.busy_key(), 0, -1) == [b"7:web1"]
    assert store.snapshot(now, recent=10, host="elsewhere").in_flight == {}
