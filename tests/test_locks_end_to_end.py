"""Metatile locks on real servers: gunicorn sync and gthread, uvicorn, and two servers
sharing TileStache's Redis cache.

A layer of 4x4 metatiles whose provider renders for a fixed time (``tests.providers:
HangWhileFile``, which also hangs for as long as a file exists): 16 concurrent requests
of one metatile all wait for the one render, and are released as soon as it ends
(TileStache's own wait polls every 200 ms). A holder SIGKILLed mid-render leaves its
lock behind: the next waiter breaks it within a second, where bare TileStache waits out
the layer's ``stale lock timeout`` (15 s); so does a holder killed the moment it took
the lock, before its in-flight entry was written (the lock records its holder).
Assertions are in orders of magnitude, so a loaded machine does not fail them.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.reading.current import current_report

from .support.gunicorn import GunicornServer
from .support.real_redis import REAL_REDIS_URL
from .test_inflight_end_to_end import UvicornServer, get

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(240)]

#: Seconds the metatile's render takes.
RENDER = 1.0
#: The 16 tiles of the 4x4 metatile whose corner is 5/0/0.
METATILE = [f"/slow/5/{x}/{y}.png" for x in range(4) for y in range(4)]


def write_config(directory: Path, hold: Path, cache: dict[str, Any] | None = None) -> Path:
    provider = {
        "class": "tests.providers:HangWhileFile",
        "kwargs": {"path": str(hold), "seconds": RENDER, "die": str(directory / "die")},
    }
    config = {
        "cache": cache or {"name": "Disk", "path": str(directory / "tiles"), "umask": "0022"},
        "layers": {"slow": {"provider": provider, "metatile": {"rows": 4, "columns": 4}}},
    }
    path = directory / "tilestache.cfg"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def serve(tmp_path: Path, use_real_redis: str) -> Iterator[Callable[..., Any]]:
    """Start servers of the example project on the locks' config; stopped at teardown."""
    started: list[Any] = []

    def start(kind: str, cache: dict[str, Any] | None = None, name: str = "") -> Any:
        env = {
            "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
            "TILESTATUS_KEY_PREFIX": use_real_redis,
            "TILESTATUS_CONFIG": str(write_config(tmp_path, tmp_path / "hold", cache)),
            "DJANGO_DEBUG": "0",
        }
        log = tmp_path / f"{kind}{name}.log"
        if kind == "uvicorn":
            server: Any = UvicornServer(env, log)
        elif kind == "gthread":
            server = GunicornServer(
                env, log, workers=1, options=["-k", "gthread", "--threads", "17"]
            )
        else:
            server = GunicornServer(env, log, workers=4)
        started.append(server)
        server.start()
        return server

    yield start
    (tmp_path / "hold").unlink(missing_ok=True)
    for server in started:
        server.stop()


def burst(bases: list[str], paths: list[str]) -> list[float]:
    """GET every path at once (the first base for the first path, then in turn); the
    monotonic time each answer (200) arrived."""
    done: dict[str, float] = {}

    def one(base: str, path: str) -> None:
        assert get(base, path) == 200
        done[path] = time.monotonic()

    threads = [
        threading.Thread(target=one, args=(bases[index % len(bases)], path))
        for index, path in enumerate(paths)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.01 if thread is threads[0] else 0)  # the first one renders
    for thread in threads:
        thread.join(120)
    assert len(done) == len(paths), done
    return sorted(done.values())


def released_after_render(times: list[float]) -> list[float]:
    """Each request's answer after the first (the render's), in seconds."""
    return [moment - times[0] for moment in times[1:]]


@pytest.mark.parametrize("kind", ["sync", "gthread", "uvicorn"])
def test_a_metatiles_waiters_are_released_when_its_render_ends(
    serve: Callable[..., Any], kind: str
) -> None:
    server = serve(kind)
    gaps = released_after_render(burst([server.base], METATILE))
    # Every waiter is answered from the one render, none after the stale timeout (15 s).
    # How soon (TileStache's polls: 0-200 ms after the render) is the benchmark's figure
    # (benchmarks.metatile_locks); the release waking waiters is tests/test_locks.py's.
    assert max(gaps) < 5, gaps
    print(f"{kind}: answers after the render's, s: {[round(gap, 3) for gap in gaps]}")
    figures = wait_for(lambda data: slow_figures(data, "lock_waits"), 10, "no lock wait counted")
    assert figures["lock_wait"]["max"] is not None


def slow_figures(data: dict[str, Any], wanted: str) -> dict[str, Any] | None:
    """The ``slow`` layer's 5-minute figures once ``wanted`` is counted."""
    for layer in data["tiles"]["layers"]:
        if layer["layer"] == "slow" and layer["windows"][0][wanted]:
            return dict(layer["windows"][0])
    return None


def holding(data: dict[str, Any]) -> dict[str, Any] | None:
    for row in data["processes"]:
        for request in row["requests"]:
            if request["lock"] and request["lock"]["held"]:
                return row
    return None


def wait_for(predicate: Callable[[dict[str, Any]], Any], seconds: float, why: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        data = current_report().as_dict()
        found = predicate(data)
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{why}; the page said {json.dumps(data)[:3000]}")
        time.sleep(0.1)


def kill_holder_and_time_the_next(tmp_path: Path, holder_base: str, waiter_base: str) -> float:
    """A request holds the metatile's lock (its render held up), another waits and names
    it; the holder's worker is SIGKILLed: seconds until a third request is answered."""
    hold = tmp_path / "hold"
    hold.touch()
    threading.Thread(target=get, args=(holder_base, METATILE[0], 120), daemon=True).start()
    row = wait_for(holding, 20, "no request was seen holding the metatile lock")
    waiters = [threading.Thread(target=get, args=(waiter_base, METATILE[1], 120), daemon=True)]
    waiters[0].start()

    def waiting(data: dict[str, Any]) -> Any:
        for other in data["processes"]:
            for request in other["requests"]:
                lock = request["lock"]
                if lock and not lock["held"] and lock["holder"]:
                    return lock
        return None

    lock = wait_for(waiting, 20, "no waiter named the holder")
    assert lock["holder"]["pid"] == row["pid"] and lock["metatile"] == "5/0/0"
    os.kill(row["pid"], signal.SIGKILL)
    hold.unlink()
    start = time.monotonic()
    assert get(waiter_base, METATILE[2], 60) == 200
    elapsed = time.monotonic() - start
    print(f"after the holder's death, a tile of its metatile in {elapsed:.3f} s")
    message = f"Broke the lock of metatile slow 5/0/0 held by dead PID {row['pid']}"
    wait_for(
        lambda data: any(line["message"] == message for line in data["messages"]),
        10,
        "the broken lock was not recorded",
    )
    return elapsed


def test_a_killed_holders_lock_is_broken_at_once(serve: Callable[..., Any], tmp_path: Path) -> None:
    server = serve("sync")  # the waiter in another worker than the holder
    elapsed = kill_holder_and_time_the_next(tmp_path, server.base, server.base)
    # Bare TileStache: the layer's stale lock timeout, 15 s. Here: the next look at the
    # holders (every 150 ms) and a render (1 s).
    assert elapsed < RENDER + 4, elapsed
    wait_for(lambda data: slow_figures(data, "locks_broken"), 10, "no broken lock counted")


def test_the_redis_cache_lock_across_two_servers(
    serve: Callable[..., Any], tmp_path: Path, use_real_redis: str
) -> None:
    cache = {"name": "Redis", "host": "127.0.0.1", "port": 6379, "db": 15}
    cache["key prefix"] = f"{use_real_redis}:cache"
    first = serve("gthread", cache, "-a")
    second = serve("gthread", cache, "-b")
    gaps = released_after_render(burst([first.base, second.base], METATILE))
    assert max(gaps) < 5, gaps  # waiters on the other server retry, none waits 15 s
    cache["key prefix"] = f"{use_real_redis}:cache2"  # a cold cache for the same metatile
    first.stop()
    first = serve("gthread", cache, "-c")
    second.stop()
    second = serve("gthread", cache, "-d")
    elapsed = kill_holder_and_time_the_next(tmp_path, first.base, second.base)
    assert elapsed < RENDER + 4, elapsed


def kill_holder_as_it_locks_and_time_the_next(
    tmp_path: Path, holder_base: str, waiter_base: str
) -> float:
    """A request's worker SIGKILLs itself the moment it holds the metatile's lock (its
    in-flight entry never says so): seconds until another tile of the metatile is
    answered, once the broken lock was recorded with the dead PID."""
    die = tmp_path / "die"
    die.touch()
    assert get(holder_base, METATILE[0], 60) == 0  # the connection broke with the worker
    pid = int((tmp_path / "die.pid").read_text())
    start = time.monotonic()
    assert get(waiter_base, METATILE[1], 60) == 200
    elapsed = time.monotonic() - start
    print(f"after a holder killed as it locked, a tile of its metatile in {elapsed:.3f} s")
    message = f"Broke the lock of metatile slow 5/0/0 held by dead PID {pid}"
    wait_for(
        lambda data: any(line["message"] == message for line in data["messages"]),
        10,
        "the broken lock was not recorded",
    )
    return elapsed


def test_a_holder_killed_as_it_takes_the_lock_has_it_broken_at_once(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    server = serve("sync")
    elapsed = kill_holder_as_it_locks_and_time_the_next(tmp_path, server.base, server.base)
    # The layer's stale lock timeout (15 s) would have forced it; here the first look at
    # the holder (50 ms) and a render (1 s).
    assert elapsed < 10, elapsed
    wait_for(lambda data: slow_figures(data, "locks_broken"), 10, "no broken lock counted")


def test_a_holder_killed_as_it_takes_the_redis_cache_lock_has_it_broken_at_once(
    serve: Callable[..., Any], tmp_path: Path, use_real_redis: str
) -> None:
    """Two servers sharing TileStache's Redis cache: the lock's value names the holder."""
    cache = {"name": "Redis", "host": "127.0.0.1", "port": 6379, "db": 15}
    cache["key prefix"] = f"{use_real_redis}:cache"
    first = serve("gthread", cache, "-a")
    second = serve("gthread", cache, "-b")
    elapsed = kill_holder_as_it_locks_and_time_the_next(tmp_path, first.base, second.base)
    assert elapsed < 10, elapsed
