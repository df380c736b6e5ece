"""Metatile locks: taken without TileStache's 200 ms polls, dead holders' locks broken at
once, and who holds which lock on the page (``serving.locks``, ``reading.locks``)."""

from __future__ import annotations

import json
import os
import threading
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from django_tilestatus.reading.liveness import DeathPolicy
from django_tilestatus.reading.locks import Claim, HolderReader, LockIndex
from django_tilestatus.reading.metrics import exposition
from django_tilestatus.reading.report import Report, ReportSettings, build_report
from django_tilestatus.recording import inflight, vocabulary
from django_tilestatus.recording.vocabulary import Kind, parse
from django_tilestatus.serving import locks
from django_tilestatus.serving.tilestache_cache import InstrumentedCache
from django_tilestatus.statistics.schema import LocksBroken, StatTotals
from django_tilestatus.storage.interface import ProcessLog, Snapshot
from django_tilestatus.tilestache import import_tilestache

from .support.real_redis import delete_prefixed, real_redis_client

NOW = 1_700_000_000.0


class Layer:
    """What the caches ask of a TileStache layer."""

    def __init__(self, name: str = "world", stale_lock_timeout: float = 15.0):
        self._name, self.stale_lock_timeout = name, stale_lock_timeout

    def name(self) -> str:
        return self._name


COORD = types.SimpleNamespace(zoom=10, column=8, row=4)


@pytest.fixture
def disk(tmp_path: Path) -> Any:
    return import_tilestache().Caches.Disk(str(tmp_path / "tiles"), dirs="portable")


@pytest.fixture(autouse=True)
def _no_holder_source() -> Iterator[None]:
    locks.set_holder_source(None)
    yield
    locks.set_holder_source(None)


def _hold(cache: Any, layer: Layer) -> tuple[threading.Event, threading.Event]:
    """A thread that takes the lock through ``cache`` and releases it when told."""
    taken, release = threading.Event(), threading.Event()

    def run() -> None:
        cache.lock(layer, COORD, "png")
        taken.set()
        release.wait(10)
        cache.unlock(layer, COORD, "png")

    threading.Thread(target=run, daemon=True).start()
    assert taken.wait(5)
    return taken, release


def test_the_disk_lock_is_tilestaches_own_directory(disk: Any) -> None:
    backend = locks.backend_for(disk, Layer(), COORD, "png")
    assert isinstance(backend, locks.DiskLock)
    assert backend.path == disk._lockpath(Layer(), COORD, "png")
    token = backend.try_lock()
    assert token is not None and os.path.isdir(backend.path)
    assert backend.try_lock() is None
    assert backend.current() == token
    disk.unlock(Layer(), COORD, "png")  # bare TileStache's unlock removes it
    assert not os.path.exists(backend.path)


def test_waiters_in_the_process_are_released_at_once(disk: Any) -> None:
    """16 waiters, one holder: all hold the lock in turn within a few ms of the release,
    not at TileStache's next 200 ms poll."""
    cache, layer = InstrumentedCache(disk), Layer()
    _, release = _hold(cache, layer)
    done: list[float] = []

    def wait() -> None:
        cache.lock(layer, COORD, "png")
        done.append(time.monotonic())
        cache.unlock(layer, COORD, "png")

    threads = [threading.Thread(target=wait) for _ in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    assert not done
    released = time.monotonic()
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(done) == 16
    assert max(done) - released < 0.15  # polling would take 200 ms for the first alone


def test_a_release_by_another_process_is_seen_within_the_retry_bound(disk: Any) -> None:
    """The lock directory removed by someone else (as another process's unlock): taken
    within the backed-off retries (20 ms at most between tries)."""
    layer = Layer()
    backend = locks.backend_for(disk, layer, COORD, "png")
    assert backend is not None and backend.try_lock()
    timer = threading.Timer(0.3, os.rmdir, [backend.path])
    timer.start()
    start = time.monotonic()
    acquired = locks.acquire(backend, "world", "10/8/4", 15)
    waited = time.monotonic() - start
    assert acquired.token and 0.29 < waited < 1.0
    locks.released(backend.key)
    os.rmdir(backend.path)


def test_a_stale_lock_is_still_forced_after_the_layers_timeout(disk: Any) -> None:
    layer = Layer(stale_lock_timeout=0.3)
    backend = locks.backend_for(disk, layer, COORD, "png")
    assert backend is not None
    old = backend.try_lock()
    start = time.monotonic()
    acquired = locks.acquire(backend, "world", "10/8/4", layer.stale_lock_timeout)
    assert 0.29 < time.monotonic() - start < 5
    assert acquired.token != old and acquired.broken == []


def test_a_dead_holders_lock_is_broken_at_once_and_a_live_ones_never(disk: Any) -> None:
    layer = Layer(stale_lock_timeout=1.0)
    backend = locks.backend_for(disk, layer, COORD, "png")
    assert backend is not None
    token = backend.try_lock()
    assert token is not None
    claims = [Claim("vm", 4321, token, dead=False)]
    locks.set_holder_source(lambda name, metatile: claims)
    start = time.monotonic()
    acquired = locks.acquire(backend, "world", "10/8/4", layer.stale_lock_timeout)
    assert time.monotonic() - start >= 0.99  # live: waited out the stale timeout
    assert acquired.broken == []
    # Now held by us (a new instance); a dead claim on the old instance breaks nothing.
    claims = [Claim("vm", 4321, token, dead=True)]
    assert locks._break_dead(backend, "world", "10/8/4") is None
    # A dead claim on the lock as it stands: broken at the first look.
    claims = [Claim("vm", 4321, acquired.token, dead=True)]
    start = time.monotonic()
    again = locks.acquire(backend, "world", "10/8/4", 15)
    assert time.monotonic() - start < 0.5
    assert [claim.pid for claim in again.broken] == [4321]


def test_breaking_is_recorded_and_counted(disk: Any, settings: Any) -> None:
    from django_tilestatus.recording.recorder import active

    recorder = active()
    assert recorder is not None
    cache, layer = InstrumentedCache(disk), Layer()
    backend = locks.backend_for(disk, layer, COORD, "png")
    assert backend is not None
    token = backend.try_lock()
    locks.set_holder_source(lambda name, metatile: [Claim("vm", 4321, token or "", True)])
    request = inflight.begin("/world/10/8/4.png", time.time())
    try:
        cache.lock(layer, COORD, "png")
        assert request.locks_broken == 1 and request.locked and request.lock_token
        assert json.loads(request.encode())["held"] is True
        cache.unlock(layer, COORD, "png")
    finally:
        inflight.end(request)
    messages = [message for _, message in map(_event, list(recorder._queue))]
    assert "Broke the lock of metatile world 10/8/4 held by dead PID 4321" in messages


def _event(item: Any) -> tuple[float, str]:
    from django_tilestatus.recording.recorder import event_of

    return event_of(item)


def test_the_message_reads_back() -> None:
    message = vocabulary.lock_broken("world", 10, 8, 4, 4321)
    assert message == "Broke the lock of metatile world 10/8/4 held by dead PID 4321"
    parsed = parse(message)
    assert parsed.kind is Kind.LOCK_BROKEN and parsed.path == "world 10/8/4"


def test_other_caches_keep_their_own_lock(disk: Any) -> None:
    ts = import_tilestache()
    assert locks.backend_for(ts.Caches.Test(), Layer(), COORD, "png") is None
    multi = ts.Caches.Multi([disk, ts.Caches.Test()])
    assert isinstance(locks.backend_for(multi, Layer(), COORD, "png"), locks.DiskLock)

    class OwnDisk(ts.Caches.Disk):  # a subclass may lock its own way
        pass

    assert locks.backend_for(OwnDisk(disk.cachepath), Layer(), COORD, "png") is None


class FakeMemcacheClient:
    values: ClassVar[dict[str, str]] = {}

    def __init__(self, servers: Any):
        self.servers = servers

    def add(self, key: str, value: str, expiry: float) -> bool:
        return self.values.setdefault(key, value) == value

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str, expiry: float) -> bool:
        self.values[key] = value
        return True

    def delete(self, key: str) -> bool:
        return self.values.pop(key, None) is not None

    def disconnect_all(self) -> None:
        pass


def test_memcache_locks_use_tilestaches_key_add_and_expiry(monkeypatch: Any) -> None:
    module = types.ModuleType("TileStache.Memcache")
    module.Client = FakeMemcacheClient  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "TileStache.Memcache", module)
    cache_class = type("Cache", (), {"__module__": "TileStache.Memcache"})
    cache = cache_class()
    cache.servers, cache.revision, cache.key_prefix = ["127.0.0.1:11211"], 0, "p"
    backend = locks.backend_for(cache, Layer(), COORD, "png")
    assert isinstance(backend, locks.MemcacheLock)
    assert backend.name == "p/0/world/10/8/4.png-lock"
    token = backend.try_lock()
    assert token is not None and token.startswith("locked.")
    assert backend.try_lock() is None and backend.current() == token
    assert not backend.break_if("locked. someone else")
    assert backend.break_if(token) and backend.current() is None


@pytest.mark.redis
def test_redis_locks_are_tilestaches_key_and_a_bare_tilestache_waits_for_them() -> None:
    client = real_redis_client()
    prefix = f"tilestatus-test-{uuid.uuid4().hex[:12]}"
    try:
        ts = import_tilestache()
        cache = ts.Redis.Cache(host="127.0.0.1", port=6379, db=15, key_prefix=prefix)
        layer = Layer(stale_lock_timeout=15)
        backend = locks.backend_for(cache, layer, COORD, "png")
        assert isinstance(backend, locks.RedisLock)
        assert backend.name == ts.Redis.tile_key(layer, COORD, "png", prefix) + "-lock"
        token = backend.try_lock()
        assert token is not None and client.get(backend.name) == token.encode()
        assert backend.try_lock() is None
        assert not backend.break_if("locked. another")
        # Bare TileStache's unlock releases it, and its lock() waits for ours.
        cache.unlock(layer, COORD, "png")
        assert backend.current() is None
        assert backend.try_lock() is not None
        threading.Timer(0.3, cache.unlock, [layer, COORD, "png"]).start()
        start = time.monotonic()
        cache.lock(layer, COORD, "png")
        assert time.monotonic() - start > 0.25
        assert backend.current() == "locked."
        assert backend.break_if("locked.") and backend.current() is None
    finally:
        delete_prefixed(client, prefix)
        client.close()


# -- who holds which lock, as the page shows it --------------------------------------


def _entry(path: str, phase: str, since: float, lock: str = "", **extra: Any) -> str:
    value = {"path": path, "started": since - 1, "phase": phase, "since": since, "lock": lock}
    return json.dumps(value | extra)


def _snapshot() -> Snapshot:
    holder = _entry(
        "/world/10/8/5.png", "render", NOW - 2, "world 10/8/4", held=True, lock_since=NOW - 2
    )
    holder_token = json.loads(holder) | {"token": "1:2"}
    waiter = _entry("/world/10/9/4.png", "lock", NOW - 0.12, "world 10/8/4")
    other = _entry("/world/10/9/5.png", "lock", NOW - 0.5, "world 10/8/4")
    return Snapshot(
        NOW,
        [ProcessLog("vm", 4321, NOW - 1), ProcessLog("here", 7, NOW), ProcessLog("here", 8, NOW)],
        in_flight={
            ("vm", 4321): [json.dumps(holder_token)],
            ("here", 7): [waiter],
            ("here", 8): [other],
        },
        busy_total=3,
    )


def _report() -> Report:
    settings = ReportSettings("here", 600, 3600, 10, 20)
    policy = DeathPolicy("here", 600, 3600, why_dead_here=lambda pid, seen: None)
    report, _ = build_report(_snapshot(), settings, policy)
    return report


def test_a_waiter_names_its_lock_and_the_holder_on_another_host() -> None:
    rows = {row.pid: row for row in _report().processes}
    [waiter] = rows[7].requests
    assert waiter.lock_text == (
        "waiting 120 ms for metatile world 10/8/4 held by vm PID 4321 (rendering for 2 s)"
    )
    assert waiter.text.startswith("/world/10/9/4.png, waiting 120 ms for metatile world 10/8/4")
    lock = waiter.as_dict()["lock"]
    assert lock["layer"] == "world" and lock["metatile"] == "10/8/4" and not lock["held"]
    assert lock["holder"] == {
        "host": "vm",
        "pid": 4321,
        "for": 2.0,
        "phase": "render",
        "gone": False,
    }
    [holder] = rows[4321].requests
    assert holder.lock_text == "holding metatile world 10/8/4 for 2 s, 2 waiting"
    assert rows[4321].as_dict()["lock_waiters"] == 2
    assert holder.as_dict()["lock"]["held"] is True


def test_the_text_and_top_show_locks() -> None:
    report = _report()
    text = report.as_text()
    assert "metatile locks:" in text
    assert "held by vm PID 4321 (rendering for 2 s)" in text
    from django_tilestatus.management.commands.tilestatus_top import screen

    assert "held by vm PID 4321" in screen(report, lambda line, kind: line)


def test_a_dead_holder_is_named_gone_and_claimed_as_dead() -> None:
    snapshot = _snapshot()
    policy = DeathPolicy("here", 600, why_dead_here=lambda pid, seen: None)
    late = Snapshot(NOW + 700, snapshot.processes, in_flight=snapshot.in_flight)
    index = LockIndex.of(late, policy)
    state = index.state("world 10/8/4", "lock", NOW + 699, False, None)
    assert state is not None and state.holder is not None and state.holder.gone
    assert "(gone)" in state.text

    class Store:
        def snapshot(self, now: float, *, recent: int) -> Snapshot:
            return late

    reader = HolderReader(lambda: Store(), policy, clock=lambda: NOW + 700)  # type: ignore[arg-type, return-value]
    assert list(reader("world", "10/8/4")) == [Claim("vm", 4321, "1:2", dead=True)]
    assert list(reader("world", "10/8/5")) == []


def test_metrics_count_broken_locks_per_layer() -> None:
    totals = StatTotals({LocksBroken("world"): 3.0}, {})
    body, _ = exposition(totals, Report(NOW))
    assert b'tilestatus_stale_locks_broken_total{layer="world"} 3.0' in body


def test_a_holder_of_this_host_in_another_pid_namespace_is_never_taken_for_dead() -> None:
    """Containers under one ``HOST``: the holder's PID means nothing in this process table,
    so only its silence may judge it, and it is not silent."""
    holder = _entry(
        "/world/10/8/5.png", "render", NOW - 2, "world 10/8/4", held=True, lock_since=NOW - 2
    )
    snapshot = Snapshot(
        NOW,
        [ProcessLog("here", 4321, NOW - 1)],
        in_flight={("here", 4321): [json.dumps(json.loads(holder) | {"token": "1:2"})]},
    )

    class Store:
        def snapshot(self, now: float, *, recent: int) -> Snapshot:
            return snapshot

        def namespaces(self, processes: Any) -> dict[tuple[str, int], int]:
            return {("here", 4321): 4026532999}  # another container's

    # This process table has no PID 4321: liveness alone would call the holder dead.
    no_such_pid = DeathPolicy("here", 600, why_dead_here=lambda pid, seen: "no longer running")
    here = replace(no_such_pid, namespace=4026531836)
    reader = HolderReader(lambda: Store(), here, clock=lambda: NOW)  # type: ignore[arg-type, return-value]
    assert list(reader("world", "10/8/4")) == [Claim("here", 4321, "1:2", dead=False)]
    blind = HolderReader(lambda: Store(), no_such_pid, clock=lambda: NOW)  # type: ignore[arg-type, return-value]
    assert list(blind("world", "10/8/4")) == [Claim("here", 4321, "1:2", dead=True)]


def test_the_process_reads_holders_only_while_it_records(settings: Any) -> None:
    from django_tilestatus import runtime

    assert list(runtime.lock_holders("world", "10/8/4")) == []  # recording, nobody holds it
    settings.TILESTATUS = {**settings.TILESTATUS, "ENABLED": False}
    assert runtime.lock_holders("world", "10/8/4") == ()
