"""Recorded statuses in the tests: writing them, reading them back, and what must
hold of them (pairs of Started and Finished, bounded lists)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django_tilestatus.recording import recorder
from django_tilestatus.recording.inflight import Request
from django_tilestatus.status import get_recent
from django_tilestatus.storage import InFlightUpdate, ProcessLog, RedisStore

#: The example project's default KEEP: the reliability tests read its servers' lists.
KEEP = 20


def make_recorder(store: Any, **kwargs: Any) -> recorder.Recorder:
    """A recorder for process 4242 of host ``web1``, writing to ``store`` (any object
    with the store's ``write``); ``kwargs`` go to ``Recorder`` (``interval``...)."""
    return recorder.Recorder(lambda: store, "web1", 4242, **kwargs)


def flush_events() -> None:
    """Write this process's queued events now, as the writer would within 200 ms."""
    current = recorder.existing_recorder()
    if current is not None:
        assert current.flush(timeout=5), "queued events could not be written"


def recorded_messages() -> list[str]:
    """This process's recorded messages, oldest first (flushes the queue)."""
    _, messages = get_recent()
    return [message for _, _, message in reversed(messages)]


def write_log(store: RedisStore, host: str, pid: int, *events: tuple[float, str]) -> None:
    """Record ``(seconds ago, message)`` events, oldest first, for one process."""
    now = time.time()
    store.write(host, pid, [(now - age, message) for age, message in events])


def write_busy(store: RedisStore, host: str, pid: int, path: str, seconds: float) -> None:
    """Record a request in flight on ``path`` for ``seconds``, as a process's writer does."""
    request = Request(1, path, time.time() - seconds)
    update = InFlightUpdate(set={"1": request.encode()}, oldest=request.started)
    store.write(host, pid, [], update)


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
