"""Metatile lock scenarios: the app beside bare TileStache, under gunicorn gthread.

    .venv/bin/python -m benchmarks.metatile_locks [--rounds N]

- **cold metatile burst**: 16 concurrent requests for the 16 tiles of one cold 4x4
  metatile, rendered once by a provider that takes a fixed 100 ms. Waiters' latency is
  the render plus the wait for the lock: TileStache polls the lock every 200 ms, the
  app wakes its waiters at the release. Reported: the waiters' p50 and max (all
  requests but the first answered), per server, over ``--rounds`` cold metatiles.
- **stale lock**: a request holds the metatile's lock while its render is held up, its
  worker is SIGKILLed, and another request of the metatile is timed: the app breaks
  the dead holder's lock at once, TileStache waits out the layer's ``stale lock
  timeout`` (15 s).

Each server is one gunicorn gthread worker of 17 threads on its own Disk cache; the app
records into Redis (``TILESTATUS_BENCH_REDIS_URL``, default db 15 of the local Redis,
under a private prefix deleted afterwards). Figures depend on the machine's load: say
under which load they were taken.
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
from pathlib import Path
from typing import Any

from tests.support.gunicorn import GunicornServer
from tests.support.processes import children

RENDER = 0.1
REDIS_URL = os.environ.get("TILESTATUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
THREADS = ["-k", "gthread", "--threads", "17"]


def write_config(directory: Path) -> Path:
    provider = {
        "class": "tests.providers:HangWhileFile",
        "kwargs": {"path": str(directory / "hold"), "seconds": RENDER},
    }
    config = {
        "cache": {"name": "Disk", "path": str(directory / "tiles"), "umask": "0022"},
        "layers": {"slow": {"provider": provider, "metatile": {"rows": 4, "columns": 4}}},
    }
    path = directory / "tilestache.cfg"
    path.write_text(json.dumps(config))
    return path


def servers(directory: Path, prefix: str) -> dict[str, tuple[GunicornServer, Path]]:
    app_dir, bare_dir = directory / "app", directory / "bare"
    app_dir.mkdir()
    bare_dir.mkdir()
    app = GunicornServer(
        {
            "TILESTATUS_REDIS_URL": REDIS_URL,
            "TILESTATUS_KEY_PREFIX": prefix,
            "TILESTATUS_CONFIG": str(write_config(app_dir)),
        },
        workers=1,
        options=THREADS,
    )
    bare = GunicornServer(
        {"TILESTATUS_BENCH_CONFIG": str(write_config(bare_dir))},
        workers=1,
        application="benchmarks.apps.bare:application",
        options=THREADS,
        ready_path="/slow/0/0/0.png",
    )
    return {"app": (app, app_dir), "bare TileStache": (bare, bare_dir)}


def tiles(base: str, zoom: int, corner: int) -> list[str]:
    return [f"{base}/slow/{zoom}/{corner + x}/{y}.png" for x in range(4) for y in range(4)]


def burst(urls: list[str]) -> list[float]:
    """Seconds each request took, the first sent first."""
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


def cold_burst(server: GunicornServer, root: str, rounds: int) -> dict[str, float]:
    waiters: list[float] = []
    for index in range(rounds):
        took = burst(tiles(server.base + root, 8, 4 * index))
        waiters += sorted(took)[1:]
    waiters.sort()
    return {
        "p50": statistics.median(waiters),
        "max": waiters[-1],
        "n": len(waiters),
    }


def stale_lock(server: GunicornServer, root: str, directory: Path) -> float:
    """Seconds a request of a metatile whose holder was SIGKILLed takes."""
    hold = directory / "hold"
    hold.touch()
    [worker] = children(server.master_pid)
    holder = f"{server.base}{root}/slow/9/0/0.png"
    threading.Thread(target=_quiet_get, args=(holder,), daemon=True).start()
    time.sleep(1.0)  # the holder has the lock (and the app's writer has said so)
    os.kill(worker, signal.SIGKILL)
    hold.unlink()
    server.wait_for_workers(lambda pids: bool(pids) and worker not in pids)
    time.sleep(1.0)  # the new worker is up
    start = time.monotonic()
    _quiet_get(f"{server.base}{root}/slow/9/1/1.png", timeout=60)
    return time.monotonic() - start


def _quiet_get(url: str, timeout: float = 60) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read()
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-stale", action="store_true", help="Skip the 15 s stale scenario.")
    options = parser.parse_args()
    prefix = f"tilestatus-bench-{uuid.uuid4().hex[:12]}"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, (server, own) in servers(Path(directory), prefix).items():
            root = "/tiles" if name == "app" else ""
            with server:
                burst_figures = cold_burst(server, root, options.rounds)
                stale = None
                if not options.no_stale:
                    stale = stale_lock(server, root, own)
            results[name] = {"burst": burst_figures, "stale": stale}
    _clean(prefix)
    print(f"cold metatile burst: 16 requests of one 4x4 metatile, {RENDER * 1000:.0f} ms render")
    for name, figures in results.items():
        burst_figures, stale = figures["burst"], figures["stale"]
        line = (
            f"  {name:<16} waiters p50 {burst_figures['p50'] * 1000:6.0f} ms, "
            f"max {burst_figures['max'] * 1000:6.0f} ms ({burst_figures['n']} waiters)"
        )
        if stale is not None:
            line += f"; after a SIGKILLed holder: {stale:.2f} s"
        print(line)


def _clean(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


if __name__ == "__main__":
    main()
