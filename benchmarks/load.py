"""Load generators: wrk when installed (Debian's ``wrk``), else a Python one.

Both keep ``CONNECTIONS`` requests in flight against a server, each on a new
connection (gunicorn's sync workers close every connection), and report
requests per second. Which one ran is written into the results;
``TILESTATUS_BENCH_LOAD=python`` picks the Python one even where wrk is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.http import request

#: Requests in flight: enough to keep 2 sync workers busy, few enough to queue briefly.
CONNECTIONS = 4
#: Side of the square of warm tiles cycled through (zoom 8).
WARM_GRID = 16
LUA = Path(__file__).with_name("paths.lua")


@dataclass
class Run:
    requests: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def warm_path(prefix: str, index: int) -> str:
    i = index % (WARM_GRID * WARM_GRID)
    return f"{prefix}/demo/8/{i % WARM_GRID}/{i // WARM_GRID}.png"


def cold_path(prefix: str, row: int, index: int) -> str:
    return f"{prefix}/demo/20/{index}/{row}.png"


#: The zoom of cold Mapnik tiles: rows there cross land on most continents.
MAPNIK_ZOOM = 10


def mapnik_path(prefix: str, row: int, index: int) -> str:
    """Tiles of ``row`` of the Mapnik layer, west to east around the world.

    The layer's 4 x 4 metatiles mean one render in four requests of a row, the
    other three waiting for it on the cache lock, as on a real Mapnik server.
    """
    return f"{prefix}/world/{MAPNIK_ZOOM}/{index % 2**MAPNIK_ZOOM}/{row}.png"


def use_wrk() -> bool:
    return os.environ.get("TILESTATUS_BENCH_LOAD", "wrk") != "python" and bool(shutil.which("wrk"))


def generator_name() -> str:
    if use_wrk():
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        first = (version.stdout or version.stderr).splitlines()[0].split(" [")[0]
        return f"{first} (1 thread, {CONNECTIONS} connections)"
    return f"Python load generator ({CONNECTIONS} threads, http.client)"


def run_load(port: int, prefix: str, mode: str, arg: int, seconds: float) -> Run:
    """Load ``port`` for ``seconds``: warm (``arg`` = grid side), cold or mapnik (``arg`` = row)."""
    if use_wrk():
        return _run_wrk(port, prefix, mode, arg, seconds)
    return _run_python(port, prefix, mode, arg, seconds)


def _run_wrk(port: int, prefix: str, mode: str, arg: int, seconds: float) -> Run:
    command = [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        prefix,
        mode,
        str(arg),
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30).stdout
    found = re.search(r"BENCH requests=(\d+) duration_us=(\d+) errors=(\d+) status=(\d+)", out)
    if found is None:
        raise RuntimeError(f"wrk gave no summary:\n{out}")
    requests, duration, errors, bad_status = map(int, found.groups())
    return Run(requests, duration / 1e6, errors + bad_status)


def _run_python(port: int, prefix: str, mode: str, arg: int, seconds: float) -> Run:
    counter = iter(range(10**9))
    lock = threading.Lock()
    done = [0, 0]  # requests, errors
    deadline = time.perf_counter() + seconds
    base = f"http://127.0.0.1:{port}"

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                index = next(counter)
            if mode == "warm":
                path = warm_path(prefix, index)
            elif mode == "mapnik":
                path = mapnik_path(prefix, arg, index)
            else:
                path = cold_path(prefix, arg, index)
            ok = 200 <= request(base, path, timeout=10).status < 400
            with lock:
                done[0] += 1
                done[1] += 0 if ok else 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    return Run(done[0], time.perf_counter() - start, done[1])
