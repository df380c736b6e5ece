"""Metatile locks: taken without TileStache's 200 ms polls, dead holders' locks broken at
once, and who holds which lock on the page (``serving.locks``, ``reading.locks``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from django_tilestatus import conf
from django_tilestatus.reading.liveness import DeathPolicy, pid_namespace
from django_tilestatus.reading.locks import Claim, HolderReader, LockIndex, recorded_claim
from django_tilestatus.reading.metrics import exposition
from django_tilestatus.reading.report import Report, ReportSettings, build_report
from django_tilestatus.recording import inflight, vocabulary
from django_tilestatus.recording.vocabulary import Kind, parse
from django_tilestatus.serving import disk_holders, locks
from django_tilestatus.serving.tilestache_cache import InstrumentedCache
from django_tilestatus.statistics.schema import LocksBroken, StatTotals
from django_tilestatus.storage.interface import ProcessLog, Snapshot
from django_tilestatus.tilestache import import_tilestache

from .support import ROOT, wait_until
from .support.real_redis import REAL_REDIS_URL, delete_prefixed, new_prefix, real_redis_client

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
    """No holder source, judge or identity unless the test sets them; the app's own
    wiring is put back afterwards."""
    wired = locks._holder_source, locks._record_judge, locks._identity
    locks.set_holder_source(None)
    locks.set_holder_identity(None)
    yield
    locks.set_holder_source(*wired[:2])
    locks.set_holder_identity(wired[2])


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


def test_waiters_in_the_process_are_released_at_once(disk: Any, monkeypatch: Any) -> None:
    """16 waiters, one holder: the release wakes them, each in turn. With every timed
    retry a minute long, only the release can let them through within the test."""
    for name in ("LOCAL_WAIT_MOST", "RETRY_FIRST", "RETRY_MOST"):
        monkeypatch.setattr(locks, name, 60.0)
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
    release.set()
    for thread in threads:
        thread.join(20)
    assert len(done) == 16  # a timed retry would have taken a minute


def test_the_holder_hands_the_lock_to_its_waiters_here_one_at_a_time(disk: Any) -> None:
    """A metatile's waiters in the holder's process are handed its lock in turn: the
    same lock directory throughout (never removed and made again between them), one
    holder at a time, and, after the last, no directory and no note left."""
    locks.set_holder_identity(lambda: locks.Identity(HOST, NAMESPACE))
    cache, layer = InstrumentedCache(disk), Layer()
    backend = locks.backend_for(disk, layer, COORD, "png")
    assert backend is not None
    _, release = _hold(cache, layer)
    first = backend.current()
    seen: list[str | None] = []
    holding, most = [0], [0]
    guard = threading.Lock()

    def wait() -> None:
        cache.lock(layer, COORD, "png")
        with guard:
            holding[0] += 1
            most[0] = max(most[0], holding[0])
        seen.append(backend.current())
        time.sleep(0.005)
        with guard:
            holding[0] -= 1
        cache.unlock(layer, COORD, "png")

    threads = [threading.Thread(target=wait) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: _waiters(backend.key) == 8, 10, 0.01)
    release.set()
    for thread in threads:
        thread.join(20)
    assert seen == [first] * 8 and most[0] == 1
    assert not os.path.exists(backend.path) and _holder_lines(backend) == []
    assert backend.key not in locks._held_here and backend.key not in locks._gates


def _waiters(key: str) -> int:
    gate = locks._gates.get(key)
    return 0 if gate is None else gate.users


def test_a_lock_handed_to_waiters_that_all_left_is_released(disk: Any) -> None:
    """Handed over, then every waiter left without taking it (an exception while it
    waited): nobody holds it, so it is released, not left for the stale timeout."""
    backend = locks.backend_for(disk, Layer(), COORD, "png")
    assert backend is not None
    token = backend.try_lock()
    assert token is not None
    locks._held(backend.key, token)
    gate = locks._enter(backend.key)
    assert locks.hand_over(backend)
    assert gate.handed == token and os.path.isdir(backend.path)
    locks._leave(backend, gate)
    assert not os.path.exists(backend.path) and backend.key not in locks._held_here


def test_a_memcache_lock_handed_over_gets_a_new_expiry(memcache: Any, monkeypatch: Any) -> None:
    """Memcache's lock key expires ``stale_lock_timeout`` after it is set: the new holder
    sets it again, for a full term of its own."""
    backend = locks.backend_for(memcache, Layer(), COORD, "png")
    assert isinstance(backend, locks.MemcacheLock)
    token = backend.try_lock()
    assert token is not None
    sets: list[tuple[str, str, float]] = []
    monkeypatch.setattr(FakeMemcacheClient, "set", lambda self, *args: sets.append(args) or True)
    locks._held(backend.key, token)
    gate = locks._enter(backend.key)
    try:
        assert locks.hand_over(backend)
        assert sets == [(backend.name, token, 15.0)]
    finally:
        with gate.condition:
            gate.handed = None
        locks._leave(backend, gate)
        locks.released(backend.key)


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
    # Seen by a retry, long before the stale timeout (15 s) would force the lock.
    assert acquired.token and acquired.broken == [] and 0.29 < waited < 5
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
    # A dead claim on the lock as it stands (taken, as it were, by another process, for a
    # holder of this one is alive): broken at the first look.
    locks._held_here.pop(backend.key, None)
    claims = [Claim("vm", 4321, acquired.token, dead=True)]
    start = time.monotonic()
    again = locks.acquire(backend, "world", "10/8/4", 15)
    assert time.monotonic() - start < 5  # broken at a look, not forced at 15 s
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


@pytest.fixture
def memcache(monkeypatch: Any) -> Iterator[Any]:
    """A ``TileStache.Memcache.Cache`` on ``FakeMemcacheClient`` (no memcached needed)."""
    module = types.ModuleType("TileStache.Memcache")
    module.Client = FakeMemcacheClient  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "TileStache.Memcache", module)
    cache_class = type("Cache", (), {"__module__": "TileStache.Memcache"})
    cache = cache_class()
    cache.servers, cache.revision, cache.key_prefix = ["127.0.0.1:11211"], 0, "p"
    FakeMemcacheClient.values.clear()
    yield cache
    FakeMemcacheClient.values.clear()


def test_memcache_locks_use_tilestaches_key_add_and_expiry(memcache: Any) -> None:
    cache = memcache
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


# -- the holder a lock records of itself ---------------------------------------------

#: The host and PID namespace the holders of these tests record.
HOST = "here"
NAMESPACE = pid_namespace()

#: A process that takes the metatile's lock as the app does and dies without releasing
#: it or writing anything else (``os._exit``), as a holder SIGKILLed right after taking
#: the lock, before its in-flight entry was sent. It prints its PID and the lock's token.
TAKE_AND_DIE = """
import json, os, sys, types
from django_tilestatus.serving import locks
job = json.loads(sys.argv[1])
locks.set_holder_identity(lambda: locks.Identity(job["host"], job["namespace"]))
layer = types.SimpleNamespace(name=lambda: "world", stale_lock_timeout=15)
coord = types.SimpleNamespace(zoom=10, column=8, row=4)
if job["kind"] == "disk":
    cache = types.SimpleNamespace(
        _lockpath=lambda *args: job["path"], cachepath=job["root"], umask=0o022
    )
    backend = locks.DiskLock(cache, layer, coord, "png")
elif job["kind"] == "redis":
    import redis
    conn = redis.Redis.from_url(job["url"])
    backend = locks.RedisLock(types.SimpleNamespace(conn=conn, key_prefix=job["prefix"]),
                              layer, coord, "png")
else:
    class Client:  # takes any add: the test plants the value in its own stand-in
        def __init__(self, servers): pass
        def add(self, key, value, expiry): return True
        def disconnect_all(self): pass
    sys.modules["TileStache.Memcache"] = types.SimpleNamespace(Client=Client)
    cache = type("Cache", (), {"__module__": "TileStache.Memcache"})()
    cache.servers, cache.revision, cache.key_prefix = [], 0, "p"
    backend = locks.MemcacheLock(cache, layer, coord, "png")
print(json.dumps({"pid": os.getpid(), "token": backend.try_lock()}), flush=True)
os._exit(0)
"""


def _disk_job(backend: locks.DiskLock) -> dict[str, Any]:
    return {"path": backend.path, "root": backend.cache.cachepath}


def _holder_lines(backend: locks.DiskLock) -> list[str]:
    """The holder files' lines that record the lock, as ``<pid> <thread>``."""
    return [
        " ".join(holder.text.split(" ", 2)[:2])
        for holder in disk_holders.holders_of(backend.holders, backend.path)
    ]


class Metatile:
    """The metatile's lock in one cache kind, as this process takes it, as another
    process that died took it, and as a bare TileStache takes it."""

    def __init__(self, kind: str, backend: locks.LockBackend, job: dict[str, Any]):
        self.kind, self.backend, self.job = kind, backend, job

    def taken_by_a_process_that_died(self, host: str = HOST) -> tuple[int, str]:
        """The dead holder's PID and the lock's token."""
        job = {**self.job, "kind": self.kind, "host": host, "namespace": NAMESPACE}
        child = subprocess.run(
            [sys.executable, "-c", TAKE_AND_DIE, json.dumps(job)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        taken = json.loads(child.stdout)
        if self.kind == "memcache":
            FakeMemcacheClient.values[self.backend.name] = taken["token"]  # type: ignore[attr-defined]
        assert self.backend.current() == taken["token"]
        return taken["pid"], taken["token"]

    def taken_by_bare_tilestache(self) -> None:
        """Taken as TileStache's own ``lock()`` takes it: a directory with no note, or
        the value ``locked.``."""
        backend = self.backend
        if isinstance(backend, locks.DiskLock):
            os.makedirs(backend.path)
        elif isinstance(backend, locks.RedisLock):
            assert backend.conn.setnx(backend.name, locks.LOCKED)
        else:
            FakeMemcacheClient.values[backend.name] = locks.LOCKED  # type: ignore[attr-defined]


@pytest.fixture(params=["disk", pytest.param("redis", marks=pytest.mark.redis), "memcache"])
def metatile(request: pytest.FixtureRequest) -> Metatile:
    layer = Layer()
    if request.param == "disk":
        backend = locks.backend_for(request.getfixturevalue("disk"), layer, COORD, "png")
        assert isinstance(backend, locks.DiskLock)
        return Metatile("disk", backend, _disk_job(backend))
    if request.param == "redis":
        client, prefix = request.getfixturevalue("real_redis"), new_prefix()
        request.addfinalizer(lambda: delete_prefixed(client, prefix))
        cache = types.SimpleNamespace(conn=client, key_prefix=f"{prefix}:cache")
        job = {"url": REAL_REDIS_URL, "prefix": cache.key_prefix}
        return Metatile("redis", locks.RedisLock(cache, layer, COORD, "png"), job)
    backend = locks.backend_for(request.getfixturevalue("memcache"), layer, COORD, "png")
    assert isinstance(backend, locks.MemcacheLock)
    return Metatile("memcache", backend, {})


def _judge_by_the_death_policy() -> None:
    """Wire waiters to a holder reader on a store that knows no process and no in-flight
    entry, judging by the real ``DeathPolicy`` of this host."""

    class Store:
        def snapshot(self, now: float, *, recent: int) -> Snapshot:
            return Snapshot(now, [])

        def namespaces(self, wanted: Any) -> dict[tuple[str, int], int]:
            return {}

    policy = DeathPolicy(HOST, 600, namespace=NAMESPACE)
    reader = HolderReader(lambda: Store(), policy)  # type: ignore[arg-type, return-value]
    locks.set_holder_source(reader, reader.judge)


def test_a_lock_records_its_holders_host_namespace_and_pid(metatile: Metatile) -> None:
    locks.set_holder_identity(lambda: locks.Identity(HOST, NAMESPACE))
    before = time.time()
    token = metatile.backend.try_lock()
    assert token is not None
    recorded = metatile.backend.recorded(token)
    assert recorded is not None
    assert (recorded.token, recorded.host, recorded.namespace, recorded.pid) == (
        token,
        HOST,
        NAMESPACE,
        os.getpid(),
    )
    assert before - 0.001 <= recorded.taken <= time.time() + 0.001  # to the microsecond
    if metatile.kind != "disk":
        assert token.startswith("locked. ")  # TileStache never reads the value


def test_without_an_identity_a_lock_records_no_holder(metatile: Metatile) -> None:
    token = metatile.backend.try_lock()
    assert token is not None and metatile.backend.recorded(token) is None


def test_the_disk_lock_stays_an_empty_directory_its_holder_in_the_process_file(
    disk: Any,
) -> None:
    locks.set_holder_identity(lambda: locks.Identity("a host with spaces", None))
    cache, layer = InstrumentedCache(disk), Layer()
    cache.lock(layer, COORD, "png")
    backend = locks.backend_for(disk, layer, COORD, "png")
    assert isinstance(backend, locks.DiskLock)
    assert os.listdir(backend.path) == []  # a bare TileStache's os.rmdir still works
    # Nothing beside it either: one file of this process in the cache's root holds it.
    assert os.listdir(os.path.dirname(backend.path)) == [os.path.basename(backend.path)]
    assert backend.holders == os.path.join(disk.cachepath, ".tilestatus-lock-holders")
    [name] = os.listdir(backend.holders)
    assert name.startswith(f"{os.getpid()}.")
    [holder] = disk_holders.holders_of(backend.holders, backend.path)
    assert holder.text.startswith(f"{os.getpid()} {threading.get_ident()} ")
    assert holder.text.endswith(" - a host with spaces")
    token = backend.current()
    assert token is not None
    recorded = backend.recorded(token)
    assert recorded is not None and recorded.host == "a host with spaces"
    assert recorded.namespace is None and recorded.pid == os.getpid()
    cache.unlock(layer, COORD, "png")
    assert not os.path.exists(backend.path)
    assert disk_holders.holders_of(backend.holders, backend.path) == []


def test_a_process_that_ends_removes_its_holder_file(disk: Any) -> None:
    program = f"""
import types
from django_tilestatus.serving import locks
from django_tilestatus.serving.tilestache_cache import InstrumentedCache
from django_tilestatus.tilestache import import_tilestache
locks.set_holder_identity(lambda: locks.Identity("here", None))
cache = InstrumentedCache(import_tilestache().Caches.Disk({disk.cachepath!r}, dirs="portable"))
layer = types.SimpleNamespace(name=lambda: "world", stale_lock_timeout=15)
cache.lock(layer, types.SimpleNamespace(zoom=10, column=8, row=4), "png")
cache.unlock(layer, types.SimpleNamespace(zoom=10, column=8, row=4), "png")
import os
print(len(os.listdir(locks.disk_holders.folder_of({disk.cachepath!r}))), flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1\n"  # made at its first lock, kept while it runs
    assert os.listdir(disk_holders.folder_of(disk.cachepath)) == []


def test_the_files_of_dead_processes_are_removed_once_no_lock_of_theirs_stands(
    disk: Any,
) -> None:
    """A holder killed while holding a lock keeps its line until the lock is broken, and
    its file goes with its last line; the file of a dead process whose lock was forced
    since goes at the next look-up. This process's own file stays."""
    locks.set_holder_identity(lambda: locks.Identity(HOST, NAMESPACE))
    elsewhere = locks.backend_for(
        disk, Layer(), types.SimpleNamespace(zoom=10, column=0, row=0), "png"
    )
    assert isinstance(elsewhere, locks.DiskLock)
    Metatile("disk", elsewhere, _disk_job(elsewhere)).taken_by_a_process_that_died()
    os.rmdir(elsewhere.path)  # forced past its stale timeout by a bare TileStache
    backend = locks.backend_for(disk, Layer(), COORD, "png")
    assert isinstance(backend, locks.DiskLock)
    _, dead_token = Metatile("disk", backend, _disk_job(backend)).taken_by_a_process_that_died()
    assert len(os.listdir(backend.holders)) == 2
    _judge_by_the_death_policy()
    acquired = locks.acquire(backend, "world", "10/8/4", 15)
    assert len(acquired.broken) == 1 and acquired.token != dead_token
    assert backend.recorded(acquired.token) is not None
    assert [name.split(".")[0] for name in os.listdir(backend.holders)] == [str(os.getpid())]


def test_a_holder_killed_before_its_entry_was_written_has_its_lock_broken_at_once(
    metatile: Metatile,
) -> None:
    """No in-flight entry names the holder, and the registry does not know its process:
    the lock's own record does, and liveness finds the PID gone. Broken at the first look,
    well before the layer's stale lock timeout (15 s) would force it."""
    pid, dead_token = metatile.taken_by_a_process_that_died()
    _judge_by_the_death_policy()
    locks.set_holder_identity(lambda: locks.Identity(HOST, NAMESPACE))
    acquired = locks.acquire(metatile.backend, "world", "10/8/4", 15)
    assert [(claim.host, claim.pid, claim.dead) for claim in acquired.broken] == [(HOST, pid, True)]
    assert acquired.token != dead_token
    ours = metatile.backend.recorded(acquired.token)
    assert ours is not None and ours.pid == os.getpid()


def test_a_live_holders_recorded_lock_is_never_broken(metatile: Metatile) -> None:
    locks.set_holder_identity(lambda: locks.Identity(HOST, NAMESPACE))
    token = metatile.backend.try_lock()
    assert token is not None
    _judge_by_the_death_policy()
    assert locks._break_dead(metatile.backend, "world", "10/8/4") is None
    assert metatile.backend.current() == token


def test_a_bare_tilestache_lock_is_never_broken_early(metatile: Metatile) -> None:
    metatile.taken_by_bare_tilestache()
    _judge_by_the_death_policy()
    token = metatile.backend.current()
    assert token is not None and metatile.backend.recorded(token) is None
    assert locks._break_dead(metatile.backend, "world", "10/8/4") is None
    assert metatile.backend.current() == token


def test_a_record_of_another_instance_of_the_disk_lock_is_ignored(
    disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead holder's line, then its lock forced by a bare TileStache (``os.rmdir`` and
    ``os.makedirs`` past the stale timeout): the directory was made too long after the
    line to be its holder's, so the live bare holder's lock is not broken."""
    monkeypatch.setattr(locks, "RECORD_LEAD_MOST", 0.1)  # not to wait a stale timeout
    backend = locks.backend_for(disk, Layer(), COORD, "png")
    assert isinstance(backend, locks.DiskLock)
    metatile = Metatile("disk", backend, _disk_job(backend))
    _, dead_token = metatile.taken_by_a_process_that_died()
    dead = backend.recorded(dead_token)
    assert dead is not None
    wait_until(lambda: time.time() > dead.taken + 0.2, 5)
    os.rmdir(backend.path)
    os.makedirs(backend.path)
    token = backend.current()
    assert token is not None and token != dead_token and len(_holder_lines(backend)) == 1
    _judge_by_the_death_policy()
    assert backend.recorded(token) is None
    assert locks._break_dead(backend, "world", "10/8/4") is None
    assert backend.current() == token
    os.rmdir(backend.path)  # the bare holder's unlock; the dead line stays, older
    locks.set_holder_identity(lambda: locks.Identity(HOST, NAMESPACE))
    ours = backend.try_lock()
    assert ours is not None
    recorded = backend.recorded(ours)
    assert recorded is not None and recorded.pid == os.getpid()


def test_a_disk_lock_is_named_before_its_directory_is_made(disk: Any) -> None:
    """A holder killed the moment ``mkdir`` returns has named itself already; a process
    that finds the lock taken leaves the holder's line alone and removes its own."""
    locks.set_holder_identity(lambda: locks.Identity(HOST, NAMESPACE))
    backend = locks.backend_for(disk, Layer(), COORD, "png")
    assert isinstance(backend, locks.DiskLock)
    me = f"{os.getpid()} {threading.get_ident()}"
    seen: list[list[str]] = []
    makedirs = os.makedirs

    def named_yet(path: str, *args: Any, **kwargs: Any) -> None:
        if path == backend.path:
            seen.append(_holder_lines(backend))
        makedirs(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(locks.os, "makedirs", named_yet)
        token = backend.try_lock()
    assert seen == [[me]] and token is not None
    # Held by another thread here: its line stays as it was.
    other: list[str | None] = []
    thread = threading.Thread(target=lambda: other.append(backend.try_lock()))
    thread.start()
    thread.join()
    assert other == [None] and _holder_lines(backend) == [me]
    # Held by a process that died: its line stays, this one's goes.
    backend.releasing()
    backend.release()
    pid, _ = Metatile("disk", backend, _disk_job(backend)).taken_by_a_process_that_died()
    assert backend.try_lock() is None
    assert [line.split(" ")[0] for line in _holder_lines(backend)] == [str(pid)]


def test_a_disk_locks_line_is_removed_when_its_dead_holders_lock_is_broken(disk: Any) -> None:
    backend = locks.backend_for(disk, Layer(), COORD, "png")
    assert isinstance(backend, locks.DiskLock)
    _, token = Metatile("disk", backend, _disk_job(backend)).taken_by_a_process_that_died()
    assert len(_holder_lines(backend)) == 1
    assert backend.break_if(token)
    assert not os.path.exists(backend.path) and _holder_lines(backend) == []


@dataclass(frozen=True)
class Record:
    """What a lock records of its holder (``serving.locks.Recorded``)."""

    token: str = "locked. 4321 1 1699999000.000000 7 here"
    host: str = HOST
    namespace: int | None = 7
    pid: int = 4321
    taken: float = NOW - 1000


def test_a_recorded_holder_is_judged_by_the_one_dead_process_rule() -> None:
    asked: list[tuple[int, float]] = []

    def gone(pid: int, last_event: float) -> str:
        asked.append((pid, last_event))
        return "no longer running"

    policy = DeathPolicy(HOST, 600, why_dead_here=gone, namespace=7)
    silent = {("here", 4321): NOW - 700, ("vm", 4321): NOW - 700}
    # This host and PID namespace (or an unknown one): liveness, since it took the lock.
    claim = recorded_claim(Record(), policy, {}, NOW)
    assert claim == Claim(HOST, 4321, Record.token, dead=True) and asked == [(4321, NOW - 1000)]
    assert recorded_claim(Record(namespace=None), policy, {}, NOW) == claim
    running = replace(policy, why_dead_here=lambda pid, last_event: None)
    assert recorded_claim(Record(), running, silent, NOW + 9999) == replace(claim, dead=False)
    # Another PID namespace of this host, or another host: the registry's silence.
    for record in (Record(namespace=8), Record(host="vm")):
        assert recorded_claim(record, policy, {}, NOW) is None  # not registered: not judged
        judged = recorded_claim(record, policy, silent, NOW)
        assert judged is not None and judged.dead
        recently = recorded_claim(record, policy, {(record.host, 4321): NOW - 10}, NOW)
        assert recently is not None and not recently.dead
        # Silent since its last event, but it took the lock since then.
        taken_lately = recorded_claim(replace(record, taken=NOW - 5), policy, silent, NOW)
        assert taken_lately is not None and not taken_lately.dead
    assert len(asked) == 2  # the others were never judged by this process table


def test_a_lock_recorded_by_a_reused_pid_is_taken_for_dead() -> None:
    """The holder's PID runs, but a process started after the lock was taken: this one,
    judged by real liveness."""
    policy = DeathPolicy(HOST, 600, namespace=7)
    ages_ago = recorded_claim(
        Record(pid=os.getpid(), taken=NOW - 10 * 365 * 86400), policy, {}, NOW
    )
    assert ages_ago is not None and ages_ago.dead
    now = time.time()
    just_now = recorded_claim(Record(pid=os.getpid(), taken=now), policy, {}, now)
    assert just_now is not None and not just_now.dead


def test_breaking_a_lock_known_from_its_record_is_recorded_and_counted(disk: Any) -> None:
    """Through the app's own wiring (``runtime.install``): the identity is the ``HOST`` the
    process records under, the judge the recording process's holder reader."""
    from django_tilestatus import runtime
    from django_tilestatus.recording.recorder import active

    runtime.install()
    recorder = active()
    assert recorder is not None
    identity = runtime.lock_identity()
    assert identity == locks.Identity(conf.get_config().host, NAMESPACE)
    cache, layer = InstrumentedCache(disk), Layer()
    backend = locks.backend_for(disk, layer, COORD, "png")
    assert isinstance(backend, locks.DiskLock)
    holder = Metatile("disk", backend, _disk_job(backend))
    pid, _ = holder.taken_by_a_process_that_died(identity.host)
    request = inflight.begin("/world/10/8/4.png", time.time())
    try:
        cache.lock(layer, COORD, "png")
        assert request.locks_broken == 1 and request.locked
        cache.unlock(layer, COORD, "png")
    finally:
        inflight.end(request)
    messages = [message for _, message in map(_event, list(recorder._queue))]
    assert f"Broke the lock of metatile world 10/8/4 held by dead PID {pid}" in messages
    assert not os.path.exists(backend.path) and _holder_lines(backend) == []


def test_the_lock_identity_follows_the_settings(settings: Any) -> None:
    from django_tilestatus import runtime

    settings.TILESTATUS = {**settings.TILESTATUS, "HOST": "tiles-1"}
    assert runtime.lock_identity() == locks.Identity("tiles-1", NAMESPACE)
    settings.TILESTATUS = {**settings.TILESTATUS, "ENABLED": False}
    assert runtime.judge_lock_record(locks.Recorded("t", "tiles-1", None, 1, NOW)) is None
