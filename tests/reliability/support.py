"""What the reliability tests check, in one place: tile bytes, logs, Redis state."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeVar

from PIL import Image

from django_tilestatus.store import ProcessLog, RedisStore

from .gunicorn_server import GunicornServer
from .http import Answer

T = TypeVar("T")

#: What the recorder logs, once per outage, when Redis fails and returns.
PAUSED = "Tile status recording paused"
RESUMED = "Tile status recording resumed"
#: The example project's default KEEP.
KEEP = 20


def wait_until(check: Callable[[], T], seconds: float, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy or ``seconds`` pass; return it."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@cache
def demo_pixels(zoom: int, column: int, row: int) -> bytes:
    """The demo layer's tile drawn here, in this process, as raw RGB pixels."""
    from example_project.demo_provider import DemoProvider

    coord = type("Coord", (), {"zoom": zoom, "column": column, "row": row})()
    return DemoProvider(layer=None).renderTile(256, 256, "", coord).convert("RGB").tobytes()


def is_demo_tile(answer: Answer, zoom: int, column: int, row: int) -> bool:
    """Whether ``answer`` is the demo layer's PNG for ``zoom/column/row``, pixel for pixel."""
    if not answer.ok or answer.headers.get("content-type") != "image/png":
        return False
    image = Image.open(io.BytesIO(answer.body))
    return image.convert("RGB").tobytes() == demo_pixels(zoom, column, row)


def warnings_by_pid(server: GunicornServer, needle: str) -> Counter[int]:
    """How many log lines containing ``needle`` each process wrote.

    The example project logs ``<date> <time> <pid> <LEVEL> <logger>: <message>``.
    """
    counts: Counter[int] = Counter()
    for line in server.log_lines(needle):
        fields = line.split()
        if len(fields) > 2 and fields[2].isdigit():
            counts[int(fields[2])] += 1
    return counts


def read_logs(client: Any, prefix: str) -> list[ProcessLog]:
    return RedisStore(client, prefix, keep=KEEP).read()


def logs_with(client: Any, prefix: str, start: str) -> list[ProcessLog]:
    """The processes with a message starting with ``start``."""
    return [
        log
        for log in read_logs(client, prefix)
        if any(message.startswith(start) for _, message in log.entries)
    ]


def messages_of(logs: Iterable[ProcessLog], pid: int | None = None) -> list[str]:
    """Messages, oldest first per process, of every process or of ``pid``."""
    found = []
    for log in logs:
        if pid is None or log.pid == pid:
            found.extend(message for _, message in reversed(log.entries))
    return found


def unmatched_finishes(log: ProcessLog) -> list[str]:
    """Problems in one process's kept events, oldest first: each Finished closes the
    Started just before it, and cache lock events happen inside a request.

    Events before the first kept Started may have lost their Started to the KEEP
    window, so they are not judged.
    """
    problems = []
    open_path: str | None = None
    seen_started = False
    for _, message in reversed(log.entries):
        if message.startswith("Started "):
            if open_path is not None:
                problems.append(f"Started {open_path!r} never finished")
            open_path = message.removeprefix("Started ")
            seen_started = True
        elif message.startswith("Finished "):
            path = message.removeprefix("Finished ").rsplit(" in ", 1)[0]
            if seen_started and open_path != path:
                problems.append(f"{message!r} after Started {open_path!r}")
            open_path = None
        elif "cache lock" in message and seen_started and open_path is None:
            problems.append(f"{message!r} outside a request")
    return problems


def assert_bounded(client: Any, prefix: str, logs: Iterable[ProcessLog]) -> None:
    """Every list within KEEP and with a TTL; the registry with a TTL too."""
    store = RedisStore(client, prefix, keep=KEEP)
    for log in logs:
        key = store.log_key(log.host, log.pid)
        assert client.llen(key) <= KEEP, key
        assert client.ttl(key) > 0, f"{key} has no TTL"
    assert client.ttl(store.registry_key()) > 0
    for key in client.scan_iter(match=f"{prefix}:*", count=500):
        assert client.ttl(key) > 0, f"{key!r} has no TTL"


def summary(answers: Iterable[Answer]) -> dict[str, Any]:
    """Requests, failures (no answer, or 5xx) and the slowest, for the figures."""
    answers = list(answers)
    seconds = sorted(answer.seconds for answer in answers)
    return {
        "requests": len(answers),
        "failures": sum(1 for a in answers if a.error or a.status >= 500),
        "slowest_s": round(seconds[-1], 3) if seconds else None,
        "median_s": round(seconds[len(seconds) // 2], 4) if seconds else None,
    }


def dropped_events(server: GunicornServer) -> int:
    """Events the workers said they dropped while Redis was away (from RESUMED lines)."""
    total = 0
    for line in server.log_lines(RESUMED):
        words = line.rsplit("; ", 1)[-1].split()
        if words and words[0].isdigit():
            total += int(words[0])
    return total
