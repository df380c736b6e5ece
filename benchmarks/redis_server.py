"""The Redis server a benchmark run uses: a private one on a free loopback port.

``TILESTATUS_BENCH_REDIS_URL`` names an existing server instead. The run
flushes the databases it uses (see ``DATABASES``), so it refuses to start
unless every one of them is empty: it never deletes data it did not write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from .servers import free_port

URL_ENV = "TILESTATUS_BENCH_REDIS_URL"
#: Databases the run uses: 0 for the servers, 1-13 for status reads and memory.
DATABASES = 15


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield a Redis URL (database 0): ``TILESTATUS_BENCH_REDIS_URL`` or a private server."""
    url = os.environ.get(URL_ENV)
    if url:
        _refuse_unless_empty(url)
        yield url
        return
    if shutil.which("redis-server") is None:
        raise SystemExit(f"redis-server is not installed; install it or set {URL_ENV}")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="tilestatus-bench-redis-")
    command = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
        "--databases",
        "16",
        "--enable-debug-command",
        "local",
        "--logfile",
        os.path.join(workdir, "redis.log"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the benchmark's redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def db_url(url: str, db: int) -> str:
    """``url`` pointed at database ``db``."""
    base = url.rsplit("/", 1)[0] if url.rsplit("/", 1)[-1].isdigit() else url.rstrip("/")
    return f"{base}/{db}"


def _refuse_unless_empty(url: str) -> None:
    """Stop unless databases 0 to DATABASES - 1 of the caller's server hold no keys."""
    base = redis.ConnectionPool.from_url(url)
    busy = {}
    for db in range(DATABASES):
        pool = redis.ConnectionPool(
            connection_class=base.connection_class, **{**base.connection_kwargs, "db": db}
        )
        client = redis.Redis(connection_pool=pool)
        try:
            size = client.dbsize()
        finally:
            client.close()
        if size:
            busy[db] = size
    if busy:
        listing = ", ".join(f"db {db}: {size} keys" for db, size in sorted(busy.items()))
        raise SystemExit(
            f"{URL_ENV} names a server whose databases 0-{DATABASES - 1} are not empty "
            f"({listing}); the benchmark flushes them, so it will not run there."
        )
