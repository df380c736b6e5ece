"""Metatile lock scenarios: the app beside bare TileStache, under gunicorn gthread.

    .venv/bin/python -m benchmarks.metatile_locks [--rounds N] [--no-stale]

``python -m benchmarks`` runs them too and judges them (``report.lock_targets``).

- **cold metatile burst**: 16 concurrent requests for the 16 tiles of one cold 4x4
  metatile, the first sent 10 ms ahead: it takes the lock and renders, the others wait.
  Two layers: ``slow``, whose provider takes a fixed 100 ms, and the example's Mapnik
  ``world`` layer (where Mapnik is installed). TileStache's waiters poll the lock every
  200 ms; the app's are handed the lock in turn. Each round asks both servers for the same
  new metatile, in an order that reverses every round, so the app / bare ratio of the
  waiters' p50 is paired within a round. The first request's own latency (the render:
  the provider's, then TileStache cutting, encoding and saving 16 tiles) is reported
  beside it, as what a waiter can at best match.
- **stale lock**: a request holds the metatile's lock while its render is held up, its
  worker is SIGKILLed, and another request of the metatile is timed: the app breaks the
  dead holder's lock at once, TileStache waits out the layer's ``stale lock timeout``
  (15 s).

Each server is one gunicorn gthread worker of 17 threads on its own Disk cache; the app
records into Redis (``TILESTATUS_BENCH_REDIS_URL``, default db 15 of the local Redis,
under a private prefix deleted afterwards). Latencies depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.gunicorn import GunicornServer
from tests.support.processes import children

from . import config
from .stats import Spread, paired_ratios

#: Seconds the ``slow`` layer's provider takes per metatile.
RENDER = 0.1
REDIS_URL = os.environ.get("TILESTATUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
THREADS = ["-k", "gthread", "--threads", "17"]
SERVERS = ("app", "bare")
#: Where each round's metatile is: (zoom, first column, row) of its top-left tile; the
#: column moves 4 tiles a round. The Mapnik one is over Europe, so every render draws land.
CORNERS = {"slow": (8, 0, 0), "world": (12, 2048, 1360)}


@dataclass(frozen=True)
class BurstRow:
    """One server's burst on one cold metatile."""

    round: int
    server: str
    layer: str
    #: Seconds the first request took (it rendered), and each waiter's.
    holder: float
    waiters: tuple[float, ...]

    @property
    def p50(self) -> float:
        return statistics.median(self.waiters)

    @property
    def worst(self) -> float:
        return max(self.waiters)


@dataclass
class LockResults:
    """The bursts of every round and the stale-lock timings (None: not measured)."""

    rounds: int
    render: float = RENDER
    bursts: list[BurstRow] = field(default_factory=list)
    stale: dict[str, float] = field(default_factory=dict)

    def layers(self) -> list[str]:
        return sorted({row.layer for row in self.bursts}, key=list(CORNERS).index)

    def rows(self, layer: str, server: str) -> list[BurstRow]:
        return [r for r in self.bursts if r.layer == layer and r.server == server]

    def p50_ratio(self, layer: str) -> Spread:
        """The app's waiters' p50 over bare TileStache's, paired within a round."""
        rows = [r for r in self.bursts if r.layer == layer]
        return Spread.of(paired_ratios(rows, "app", "bare", "server", "p50", "round"))

    def spread(self, layer: str, server: str, value: str) -> Spread:
        return Spread.of(getattr(row, value) for row in self.rows(layer, server))

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "render": self.render,
            "bursts": [
                [r.round, r.server, r.layer, r.holder, list(r.waiters)] for r in self.bursts
            ],
            "stale": self.stale,
        }


# -- the servers ---------------------------------------------------------------


def write_config(directory: Path, with_mapnik: bool) -> Path:
    provider = {
        "class": "tests.providers:HangWhileFile",
        "kwargs": {"path": str(directory / "hold"), "seconds": RENDER},
    }
    layers: dict[str, Any] = {"slow": {"provider": provider, "metatile": {"rows": 4, "columns": 4}}}
    if with_mapnik:
        example = json.loads(config.write_config(directory / "example").read_text("utf-8"))
        layers["world"] = example["layers"][config.MAPNIK_LAYER]
    settings = {
        "cache": {"name": "Disk", "path": str(directory / "tiles"), "umask": "0022"},
        "layers": layers,
    }
    path = directory / "tilestache.cfg"
    path.write_text(json.dumps(settings))
    return path


def has_mapnik() -> bool:
    """Whether the example's Mapnik layer can be served here."""
    with tempfile.TemporaryDirectory() as directory:
        return config.has_mapnik_layer(config.write_config(Path(directory)))


@dataclass
class Served:
    server: GunicornServer
    directory: Path
    #: The URL path before ``/<layer>/<z>/<x>/<y>.png``.
    root: str

    def url(self, layer: str, zoom: int, x: int, y: int) -> str:
        return f"{self.server.base}{self.root}/{layer}/{zoom}/{x}/{y}.png"


def make_servers(
    directory: Path, prefix: str, redis_url: str, with_mapnik: bool
) -> dict[str, Served]:
    app_dir, bare_dir = directory / "app", directory / "bare"
    app_dir.mkdir()
    bare_dir.mkdir()
    app = GunicornServer(
        {
            "TILESTATUS_REDIS_URL": redis_url,
            "TILESTATUS_KEY_PREFIX": prefix,
            "TILESTATUS_CONFIG": str(write_config(app_dir, with_mapnik)),
        },
        workers=1,
        options=THREADS,
    )
    bare = GunicornServer(
        {config.CONFIG_ENV: str(write_config(bare_dir, with_mapnik))},
        workers=1,
        application="benchmarks.apps.bare:application",
        options=THREADS,
        ready_path="/slow/0/0/0.png",
    )
    return {"app": Served(app, app_dir, "/tiles"), "bare": Served(bare, bare_dir, "")}


# -- the scenarios ---------------------------------------------------------------


def burst(urls: list[str]) -> list[float]:
    """Seconds each request took, the first (sent 10 ms ahead of the rest) first."""
    took: list[float] = [0.0] * len(urls)

    def one(index: int) -> None:
        start = time.monotonic()
        with urllib.request.urlopen(urls[index], timeout=60) as answer:
            answer.read()
        took[index] = time.monotonic() - start

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(urls))]
    for index, thread in enumerate(threads):
        thread.start()
        if index == 0:
            time.sleep(0.01)
    for thread in threads:
        thread.join(60)
    return took


def metatile_urls(served: Served, layer: str, number: int) -> list[str]:
    zoom, column, row = CORNERS[layer]
    corner = column + 4 * number
    return [served.url(layer, zoom, corner + x, row + y) for y in range(4) for x in range(4)]


def bursts(
    servers: dict[str, Served], layers: list[str], rounds: int, progress: Callable[[str], None]
) -> list[BurstRow]:
    found = []
    for number in range(rounds):
        order = SERVERS if number % 2 == 0 else SERVERS[::-1]
        for layer in layers:
            for name in order:
                took = burst(metatile_urls(servers[name], layer, number))
                found.append(BurstRow(number, name, layer, took[0], tuple(took[1:])))
        progress(f"metatile bursts: round {number + 1}/{rounds}")
    return found


def stale_lock(served: Served) -> float:
    """Seconds a request of a metatile whose holder was SIGKILLed takes."""
    server, hold = served.server, served.directory / "hold"
    hold.touch()
    [worker] = children(server.master_pid)
    threading.Thread(target=_quiet_get, args=(served.url("slow", 9, 0, 0),), daemon=True).start()
    time.sleep(1.0)  # the holder has taken the lock and is held up in its render
    os.kill(worker, signal.SIGKILL)
    hold.unlink()
    server.wait_for_workers(lambda pids: bool(pids) and worker not in pids)
    time.sleep(1.0)  # the new worker is up
    start = time.monotonic()
    _quiet_get(served.url("slow", 9, 1, 1), timeout=60)
    return time.monotonic() - start


def _quiet_get(url: str, timeout: float = 60) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read()
    except OSError:
        pass


@contextmanager
def running(servers: dict[str, Served]) -> Iterator[None]:
    with ExitStack() as stack:
        for served in servers.values():
            stack.enter_context(served.server)
        yield


def measure(
    redis_url: str,
    rounds: int,
    progress: Callable[[str], None] = lambda message: None,
    stale: bool = True,
) -> LockResults:
    """Both scenarios, both servers; Redis keys under a private prefix, deleted after."""
    prefix = f"tilestatus-bench-locks-{uuid.uuid4().hex[:12]}"
    layers = ["slow", "world"] if has_mapnik() else ["slow"]
    results = LockResults(rounds)
    try:
        with tempfile.TemporaryDirectory() as directory:
            servers = make_servers(Path(directory), prefix, redis_url, "world" in layers)
            with running(servers):
                results.bursts = bursts(servers, layers, rounds, progress)
            if stale:  # each server alone: the other's worker restart is no load here
                for name in SERVERS:
                    with servers[name].server:
                        results.stale[name] = stale_lock(servers[name])
                    progress(f"stale lock: {name} {results.stale[name]:.2f} s")
    finally:
        _clean(redis_url, prefix)
    return results


def _clean(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def summary(results: LockResults) -> list[str]:
    lines = []
    for layer in results.layers():
        what = f"{results.render * 1000:.0f} ms provider" if layer == "slow" else "Mapnik"
        lines.append(f"cold metatile burst, {layer} ({what}), 16 requests of one 4x4 metatile:")
        for name in SERVERS:
            holder = results.spread(layer, name, "holder")
            p50 = results.spread(layer, name, "p50")
            lines.append(
                f"  {name:<5} holder {holder.format(0, 1000, ' ms')}, "
                f"waiters p50 {p50.format(0, 1000, ' ms')}"
            )
        lines.append(f"  app / bare waiters' p50: {results.p50_ratio(layer).format()}")
    for name, seconds in results.stale.items():
        lines.append(f"after a SIGKILLed holder: {name} {seconds:.2f} s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-stale", action="store_true", help="Skip the 15 s stale scenario.")
    options = parser.parse_args()
    results = measure(REDIS_URL, options.rounds, stale=not options.no_stale)
    print("\n".join(summary(results)))


if __name__ == "__main__":
    main()
