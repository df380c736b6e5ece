"""The background writer: order, batching, bounded memory, outages, exit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from django_tilestatus.recording.recorder import FAILED, SERVED
from django_tilestatus.storage import InFlightUpdate, RedisStore, StoreUnavailable
from django_tilestatus.storage.redis_store import describe_failure

from .support import wait_until
from .support.real_redis import REAL_REDIS_URL
from .support.statistics import pending
from .support.status import make_recorder

ROOT = Path(__file__).resolve().parent.parent


class FlakyStore:
    """Stands in for a store whose Redis can be switched off and on."""

    ttl = 3600
    keep = 20

    def __init__(self) -> None:
        self.up = True
        self.batches: list[list[str]] = []
        self.updates: list[InFlightUpdate] = []
        self.announced: list[int | None] = []
        self.stats: list[Any] = []

    @property
    def messages(self) -> list[str]:
        """Every message written, oldest first."""
        return [message for batch in self.batches for message in batch]

    def announce(self, host: str, pid: int, namespace: int | None) -> None:
        if not self.up:
            raise StoreUnavailable(describe_failure(redis.ConnectionError("Connection refused")))
        self.announced.append(namespace)

    def write(
        self,
        host: str,
        pid: int,
        events: Any,
        in_flight: InFlightUpdate | None = None,
        stats: Any = None,
        batch: Any = None,
    ) -> bool:
        if not self.up:
            raise StoreUnavailable(describe_failure(redis.ConnectionError("Connection refused")))
        if events:
            self.batches.append([message for _, message in events])
        if in_flight is not None:
            self.updates.append(in_flight)
        if stats:
            self.stats.append(stats)
        return True


def test_events_are_sent_in_order_in_few_batches() -> None:
    store = FlakyStore()
    recorder = make_recorder(store, interval=3600)  # only explicit flushes
    for i in range(100):
        recorder.record(f"event {i}")
    assert store.batches == []  # recording did not touch Redis
    assert recorder.flush()
    assert store.batches == [[f"event {i}" for i in range(100)]]
    recorder.stop()


def test_requests_are_worded_in_order_even_when_they_span_sends() -> None:
    store = FlakyStore()
    recorder = make_recorder(store, interval=3600)
    slow = recorder.begin_request("/a/1/0/0.png")
    assert recorder.flush()  # sent while it is under way
    quick = recorder.begin_request("/b/2/0/0.png")
    slow.status, slow.seconds = 200, 0.5
    recorder.end_request(slow, SERVED)
    recorder.record("a note")
    quick.status, quick.seconds = 500, 0.1
    recorder.end_request(quick, FAILED, "Error: boom after 0.100 seconds")
    assert recorder.flush()
    assert store.batches == [
        ["Created", "Started /a/1/0/0.png"],
        [
            "Started /b/2/0/0.png",
            "Finished /a/1/0/0.png in 0.500 seconds",
            "a note",
            "Error: boom after 0.100 seconds",
        ],
    ]
    recorder.stop()


def test_a_store_that_keeps_few_gets_the_newest_of_a_busy_batch(
    real_redis: Any, real_prefix: str
) -> None:
    store = RedisStore(real_redis, real_prefix, keep=3)
    recorder = make_recorder(store, interval=3600)
    for number in range(1000):
        request = recorder.begin_request(f"/a/1/{number}/0.png")
        request.status, request.seconds = 200, number / 1000
        recorder.end_request(request, SERVED)
    assert recorder.flush()
    [log] = store.read()
    assert [message for _, message in log.entries] == [
        "Finished /a/1/999/0.png in 0.999 seconds",
        "Started /a/1/999/0.png",
        "Finished /a/1/998/0.png in 0.998 seconds",
    ]
    recorder.stop()


def test_the_writer_thread_sends_within_a_second() -> None:
    store = FlakyStore()
    recorder = make_recorder(store)
    recorder.record("Started /a/1/2/3.png")
    wait_until(lambda: store.batches, seconds=1.0, interval=0.01)
    recorder.stop()


def test_outage_keeps_newest_events_bounded_and_warns_once(caplog: Any) -> None:
    store = FlakyStore()
    store.up = False
    recorder = make_recorder(store, interval=3600, max_queue=10)
    with caplog.at_level(logging.WARNING, logger="django_tilestatus.recording.recorder"):
        for i in range(25):
            recorder.record(f"event {i}")
            recorder.flush()
        assert pending(recorder) == 10
        assert recorder.dropped == 15
        store.up = True
        assert recorder.flush()
    assert store.batches == [[f"event {i}" for i in range(15, 25)]]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "paused" in warnings[0] and "Connection refused" in warnings[0]
    assert "resumed" in warnings[1] and "15 events were dropped" in warnings[1]
    recorder.stop()


def test_writer_resumes_by_itself_after_an_outage() -> None:
    store = FlakyStore()
    store.up = False
    recorder = make_recorder(store, interval=0.01)
    recorder.record("during the outage")
    time.sleep(0.05)
    store.up = True
    wait_until(lambda: store.batches, seconds=3.0, interval=0.01)
    assert store.batches[0] == ["during the outage"]
    recorder.stop()


def test_stop_flushes_what_is_left() -> None:
    store = FlakyStore()
    recorder = make_recorder(store, interval=3600)
    recorder.record("last words")
    assert recorder.stop()
    assert store.batches == [["last words"]]


def run_and_exit(prefix: str, body: str) -> str:
    """Run ``body`` in a fresh Python recording into the real Redis, let it exit cleanly."""
    code = textwrap.dedent(
        f"""
        import django
        from django.conf import settings
        settings.configure(
            INSTALLED_APPS=["django_tilestatus"],
            TILESTATUS={{"CONFIG": {{"layers": {{}}}}, "REDIS_URL": {REAL_REDIS_URL!r},
                         "KEY_PREFIX": {prefix!r}, "HOST": "exit-test"}},
        )
        django.setup()
        """
    ) + textwrap.dedent(body)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.redis
def test_a_clean_exit_records_destroyed(real_redis: Any, real_prefix: str) -> None:
    output = run_and_exit(
        real_prefix,
        """
        from django_tilestatus.recording.recorder import active
        recorder = active()
        recorder.begin_request("/solid/1/2/3.png")
        print(recorder.pid)
        """,
    )
    [log] = RedisStore(real_redis, prefix=real_prefix).read()
    assert (log.host, log.pid) == ("exit-test", int(output))
    assert [m for _, m in log.entries] == ["Destroyed", "Started /solid/1/2/3.png", "Created"]


@pytest.mark.redis
def test_a_clean_exit_flushes_update_status_events(real_redis: Any, real_prefix: str) -> None:
    run_and_exit(
        real_prefix,
        """
        from django_tilestatus.status import update_status
        update_status("Reloaded the layer config")
        """,
    )
    [log] = RedisStore(real_redis, prefix=real_prefix).read()
    # Not a tile-serving process: no Created/Destroyed, but nothing lost either.
    assert [m for _, m in log.entries] == ["Reloaded the layer config"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
# Python 3.12+ warns on fork() while the writer thread runs; the child here
# only checks its recorder and exits at once.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_its_own_recorder() -> None:
    from django_tilestatus.recording import recorder as recorder_module
    from django_tilestatus.recording.recorder import active

    parent = active()
    assert parent is not None
    parent.record("in the parent")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        child = active()
        ok = child is not parent and child.pid == os.getpid() and pending(child) == 0
        os.write(write_end, b"1" if ok else b"0")
        os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 1) == b"1"
    os.close(read_end)
    os.waitpid(pid, 0)
    assert recorder_module.existing_recorder() is parent


def test_a_refused_write_is_logged_as_refused_without_the_events(caplog: Any) -> None:
    class FullRedis:
        """A Redis over ``maxmemory``: the batch script's first write is refused, as
        redis-py reports it."""

        def evalsha(self, *args: Any) -> None:
            raise redis.exceptions.OutOfMemoryError(
                "command not allowed when used memory > 'maxmemory'."
            )

    recorder = make_recorder(RedisStore(FullRedis()), interval=3600)
    with caplog.at_level(logging.WARNING, logger="django_tilestatus.recording.recorder"):
        recorder.record("Started /secret/1/2/3.png")
        assert not recorder.flush()
    [warning] = [r.getMessage() for r in caplog.records]
    assert "Redis refused the write (OutOfMemoryError: command not allowed" in warning
    assert "/secret/" not in warning and "LPUSH" not in warning
    recorder.stop(flush=False)


def test_the_writer_announces_its_pid_namespace_before_writing_then_every_half_ttl() -> None:
    store = FlakyStore()
    store.ttl = 2  # announced again once a send comes more than a second later
    recorder = make_recorder(store, interval=3600, namespace=4026531836)
    store.up = False
    recorder.record("Created")
    assert not recorder.flush()
    assert store.announced == [] and store.batches == []  # nothing written, kept for later
    store.up = True
    assert recorder.flush()
    assert store.announced == [4026531836] and store.batches == [["Created"]]
    recorder.record("Started /a/1/0/0.png")
    assert recorder.flush()
    assert store.announced == [4026531836]  # once, not at every send
    assert recorder.flush()  # nothing to send: nothing announced either
    time.sleep(1.1)
    recorder.record("Finished /a/1/0/0.png in 0.1 seconds")
    assert recorder.flush()
    assert store.announced == [4026531836, 4026531836]
    recorder.stop()


def test_a_writer_that_does_not_know_its_namespace_announces_nothing() -> None:
    store = FlakyStore()
    recorder = make_recorder(store, interval=3600)
    recorder.record("Created")
    assert recorder.flush()
    assert store.announced == [] and store.batches == [["Created"]]
    recorder.stop()
