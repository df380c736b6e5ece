"""Reading the status log: ``get_recent()`` and the status page, for 10, 100 and
1000 processes, with no other keys in the database and with 1,000,000 unrelated
ones; the original pattern's KEYS-based ``get_recent`` beside them.

Each (processes, unrelated keys) case has a Redis database of its own, so the
two keyspace sizes are timed alternately, pair by pair, on one server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from django_tilestatus.storage import RedisStore

from . import original_pattern as original
from .redis_server import db_url

PROCESS_COUNTS = (10, 100, 1000)
UNRELATED = 1_000_000
KEEP = 20
PREFIX = "tilestatus"
#: The status page as timed. It is the one place to change if the page moves.
STATUS_PAGE = "/tiles/status/?format=json"


#: Reads per timing; the fastest is kept, so one stall of a busy machine is not a figure.
BEST_OF = 5


def best_time(call: Callable[[], object], tries: int = BEST_OF) -> float:
    """Seconds of the fastest of ``tries`` calls."""
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class ReadRow:
    """One raw timing of a read."""

    reader: str  # "get_recent", "status page" or "original get_recent"
    repeat: int
    processes: int
    unrelated: int
    seconds: float


def database(pattern: str, processes: int, unrelated: int) -> int:
    """Databases 1-6 for this app's log, 7-12 for the original pattern's."""
    index = PROCESS_COUNTS.index(processes) * 2 + (1 if unrelated else 0)
    return 1 + index + (6 if pattern == "original" else 0)


def _messages(pid: int, now: float) -> list[tuple[float, str]]:
    events = []
    for index in range(KEEP // 2):
        path = f"/demo/15/{5000 + index}/{12000 + pid % 1000}.png"
        stamp = now - (KEEP - 2 * index) * 0.5
        events.append((stamp, f"Started {path}"))
        events.append((stamp + 0.01, f"Finished {path} in 0.010 seconds"))
    return events


def add_unrelated_keys(client: redis.Redis, count: int) -> None:
    """``count`` small keys, fast: DEBUG POPULATE, else a server-side Lua loop."""
    try:
        client.execute_command("DEBUG", "POPULATE", count, "unrelated")
        return
    except redis.ResponseError:
        pass
    script = "for i = ARGV[1], ARGV[2] do redis.call('SET', 'unrelated:' .. i, 'x') end"
    for start in range(0, count, 100_000):
        client.eval(script, 0, start, min(count, start + 100_000) - 1)


def populate(url: str, progress: Callable[[str], None]) -> None:
    now = time.time()
    for processes in PROCESS_COUNTS:
        for unrelated in (0, UNRELATED):
            ours = redis.Redis.from_url(db_url(url, database("ours", processes, unrelated)))
            theirs = redis.Redis.from_url(db_url(url, database("original", processes, unrelated)))
            for client in (ours, theirs):
                client.flushdb()
                if unrelated:
                    add_unrelated_keys(client, unrelated)
            store = RedisStore(ours, PREFIX, keep=KEEP, ttl=3600)
            pipe = theirs.pipeline(transaction=False)
            for pid in range(20_000, 20_000 + processes):
                events = _messages(pid, now)
                store.write("tiles-1", pid, events)
                key = f"pid-{pid}-statuses"
                pipe.lpush(key, *[f"{stamp:.6f} {message}" for stamp, message in events])
                pipe.expire(key, 3600)
            pipe.execute()
            ours.close()
            theirs.close()
        progress(
            f"status reads: {processes} processes written (with and without "
            f"{UNRELATED:,} unrelated keys)"
        )


def _staff_client() -> Any:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0, interactive=False)
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    client = Client()
    client.force_login(user)
    return client


def time_reads(url: str, repeats: int, progress: Callable[[str], None]) -> list[ReadRow]:
    """Time every reader, alternating between the two keyspace sizes."""
    from django.conf import settings
    from django.test import override_settings

    from django_tilestatus.status import get_recent

    browser = _staff_client()
    base = dict(settings.TILESTATUS)
    rows: list[ReadRow] = []

    def page() -> None:
        response = browser.get(STATUS_PAGE)
        if response.status_code != 200:
            raise RuntimeError(f"the status page answered {response.status_code}")

    for processes in PROCESS_COUNTS:
        for number in range(repeats):
            order = (0, UNRELATED) if number % 2 == 0 else (UNRELATED, 0)
            for unrelated in order:
                db = database("ours", processes, unrelated)
                tilestatus = {
                    **base,
                    "REDIS_URL": db_url(url, db),
                    "KEY_PREFIX": PREFIX,
                    "KEEP": KEEP,
                }
                with override_settings(TILESTATUS=tilestatus):
                    found, _ = get_recent()  # connects; not timed
                    if len(found) != processes:
                        raise RuntimeError(f"expected {processes} processes, read {len(found)}")
                    tries = BEST_OF if processes >= 1000 else 2 * BEST_OF  # cheap ones: more
                    for reader, call in (("get_recent", get_recent), ("status page", page)):
                        seconds = best_time(call, tries)
                        rows.append(ReadRow(reader, number, processes, unrelated, seconds))
                theirs = redis.Redis.from_url(
                    db_url(url, database("original", processes, unrelated))
                )
                theirs.ping()
                # One read: with 1,000,000 keys its KEYS blocks Redis for a long while.
                seconds = best_time(lambda: original.get_recent(theirs), tries=1)  # noqa: B023
                rows.append(ReadRow("original get_recent", number, processes, unrelated, seconds))
                theirs.close()
        progress(f"status reads: {processes} processes timed")
    return rows
