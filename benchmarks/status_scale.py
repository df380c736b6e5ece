"""The status page at scale: 20,000 processes of 20 messages each, all seen within TTL.

A rogue host or heavy ``--max-requests`` churn can register that many. Every
format of the page must still answer in under a second, in under 1 MB, and
without the serving worker's memory growing by more than 20 MB: the read is
bounded (``StatusStore.snapshot``) and the table capped (``MAX_PROCESS_ROWS``).
Time is the fastest of a few reads; memory is the peak of Python's allocations
during one read (tracemalloc), measured apart from the timing.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import redis

from django_tilestatus.storage import RedisStore

from .redis_server import db_url
from .status_reads import KEEP, PREFIX, _messages, _staff_client, best_time

PROCESSES = 20_000
#: The database the crowd is written to (status_reads uses 1-12, redis_usage 13).
DATABASE = 14
FORMATS = ("html", "json", "text")
#: What every format must stay under.
MAX_SECONDS = 1.0
MAX_BYTES = 1_000_000
MAX_GROWTH = 20 * 1024 * 1024


@dataclass
class ScaleRow:
    """One format of the page read over the crowd."""

    format: str
    seconds: float
    bytes: int
    peak_bytes: int


def populate(url: str, progress: Callable[[str], None]) -> None:
    """Register PROCESSES processes of two hosts, each with KEEP messages."""
    client = redis.Redis.from_url(db_url(url, DATABASE))
    client.flushdb()
    store = RedisStore(client, PREFIX, keep=KEEP, ttl=3600)
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for index, pid in enumerate(range(100_000, 100_000 + PROCESSES)):
        host = f"tiles-{index % 2 + 1}"
        key = store.log_key(host, pid)
        events = _messages(pid, now - index * 0.01)
        pipe.lpush(key, *[f"{stamp:.6f} {message}" for stamp, message in events])
        pipe.expire(key, 3600)
        pipe.zadd(store.registry_key(), {f"{pid}:{host}": events[-1][0]})
        if index % 1000 == 999:
            pipe.execute()
    pipe.expire(store.registry_key(), 3600)
    pipe.execute()
    client.close()
    progress(f"status scale: {PROCESSES:,} processes written")


def measure(url: str, progress: Callable[[str], None]) -> list[ScaleRow]:
    """Each format: fastest of 3 reads, its size, and the peak memory of one read."""
    from django.conf import settings
    from django.test import override_settings

    browser = _staff_client()
    tilestatus = {
        **settings.TILESTATUS,
        "REDIS_URL": db_url(url, DATABASE),
        "KEY_PREFIX": PREFIX,
        "KEEP": KEEP,
    }
    rows = []
    with override_settings(TILESTATUS=tilestatus):
        for fmt in FORMATS:
            path = f"/tiles/status/?format={fmt}"
            size = 0

            def read(path: str = path) -> None:
                nonlocal size
                response = browser.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                size = len(response.content)

            read()  # connects; not timed
            seconds = best_time(read, tries=3)
            tracemalloc.start()
            read()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rows.append(ScaleRow(fmt, seconds, size, peak))
    progress(f"status scale: {PROCESSES:,} processes read in every format")
    return rows
