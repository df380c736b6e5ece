"""The Redis server a benchmark run uses: a private one on a free loopback port.

``TILESTATUS_BENCH_REDIS_URL`` names an existing server instead; the run then
flushes the databases it uses (see ``DATABASES``), so never point it at a
server holding data.
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
DATABASES = 14


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield a Redis URL (database 0): ``TILESTATUS_BENCH_REDIS_URL`` or a private server."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        raise SystemExit(f"redis-server is not installed; install it or set {URL_ENV}")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="tilestatus-bench-redis-")
    command = [
        "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
        "--appendonly", "no", "--dir", workdir, "--databases", "16",
        "--enable-debug-command", "local", "--logfile", os.path.join(workdir, "redis.log"),
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
