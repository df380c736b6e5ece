"""The Redis server a benchmark run uses: a private one on a free loopback port.

``TILESTATUS_BENCH_REDIS_URL`` names an existing server instead. The run
flushes the databases it uses (see ``DATABASES``), so it refuses to start
unless every one of them is empty: it never deletes data it did not write.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.redis_server import RedisServer

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
    with tempfile.TemporaryDirectory(
        prefix="tilestatus-bench-redis-", ignore_cleanup_errors=True
    ) as workdir:
        # DEBUG POPULATE fills a database with a million unrelated keys fast.
        server = RedisServer(
            Path(workdir), options=["--databases", "16", "--enable-debug-command", "local"]
        )
        try:
            server.start()
        except RuntimeError as exc:
            raise SystemExit(f"the benchmark's redis-server did not start: {exc}") from None
        try:
            yield server.url
        finally:
            server.stop()


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
