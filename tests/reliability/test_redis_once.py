"""Redis hung past the client's timeout, paused and killed under load: each batch once.

A batch whose reply was lost (``DEBUG SLEEP`` longer than the app's 0.5 s socket
timeout: Redis applies it after the writer gave up) is sent again with its number,
and the batch script skips it; so after every fault the statistics count each
request exactly once and no process's list holds an event twice. Redis keeps an
append-only file synced at each write, so a SIGKILL loses nothing it acknowledged
and a restart brings it all back: any difference in the counts is the app's.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from django_tilestatus.statistics.schema import RequestCount
from django_tilestatus.storage import RedisStore

from ..support import wait_until
from ..support.example_project import PAUSED, RESUMED, dropped_events, warnings_by_pid
from ..support.http import Answer, request, summary
from ..support.redis_server import RedisServer
from ..support.status import KEEP, read_logs

pytestmark = [pytest.mark.reliability, pytest.mark.redis, pytest.mark.timeout(120)]

ZOOM = 4
CLIENTS = 4


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis that takes ``DEBUG SLEEP`` and keeps what it acknowledged."""
    server = RedisServer(
        tmp_path / "redis",
        password=f"pw-{uuid.uuid4().hex}",
        options=[
            "--enable-debug-command",
            "yes",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
    )
    server.start()
    yield server
    server.stop()


def stall(server: RedisServer, seconds: float) -> threading.Thread:
    """``DEBUG SLEEP``: Redis answers no one for ``seconds``, then goes on (a thread)."""

    def sleep() -> None:
        client = redis.Redis.from_url(server.url, socket_timeout=seconds + 10)
        try:
            client.execute_command("DEBUG", "SLEEP", str(seconds))
        finally:
            client.close()

    thread = threading.Thread(target=sleep)
    thread.start()
    return thread


class Load:
    """``CLIENTS`` threads asking for demo tiles without pause until stopped."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=CLIENTS)
        self.futures = [self.pool.submit(self.run, n) for n in range(CLIENTS)]

    def run(self, n: int) -> None:
        i = n
        while not self.stopping.is_set():
            x, y = i % 16, i // 16 % 16
            answer = request(self.base, f"/tiles/demo/{ZOOM}/{x}/{y}.png", timeout=10)
            with self.lock:
                self.answers.append(answer)
            i += CLIENTS

    def stop(self) -> list[Answer]:
        self.stopping.set()
        for future in self.futures:
            future.result()
        self.pool.shutdown()
        return self.answers


def counted(store: RedisStore, layer: str | None = "demo") -> int:
    """Requests the statistics counted, of ``layer`` (None: all; the readiness checks
    ask for the tile index)."""
    return sum(
        int(value)
        for record, value in store.stat_totals().fields.items()
        if isinstance(record, RequestCount) and layer in (None, record.layer)
    )


def served_counts(client: Any, store: RedisStore) -> int:
    """Requests the processes' own counts say they served (``heads``' counts)."""
    return sum(
        int(client.hget(store.counts_key(host, pid), "served") or 0)
        for host, pid, _ in store.registry().entries
    )


# gthread only: its threads share one writer, the harder case; the sync worker's single
# request thread is the same writer with fewer ends (the slowest scenario runs once).
@pytest.mark.parametrize("worker_class", ["gthread"])
def test_every_request_is_counted_once_through_hangs_pauses_and_a_kill(
    start_server: Any, redis_server: RedisServer, key_prefix: str, figures: Any, worker_class: str
) -> None:
    options = ["--worker-class", worker_class]
    if worker_class == "gthread":
        options += ["--threads", "4"]
    server = start_server(workers=2, options=options)
    workers = server.worker_pids()
    client = redis_server.client()
    store = RedisStore(client, key_prefix, keep=KEEP)
    faults = []

    load = Load(server.base)
    time.sleep(1.0)
    # Redis hung for 4 socket timeouts: the writers' replies are lost, and Redis
    # applies their batches when it wakes.
    stall(redis_server, 2.0).join()
    faults.append("DEBUG SLEEP 2")
    time.sleep(0.5)
    redis_server.client().execute_command("CLIENT", "PAUSE", "1500")
    faults.append("CLIENT PAUSE 1500")
    time.sleep(2.0)
    redis_server.kill()  # whatever it acknowledged is in its append-only file
    time.sleep(0.7)
    redis_server.restart()
    faults.append("SIGKILL, restart after 0.7 s (appendfsync always)")
    client = redis_server.client()
    store = RedisStore(client, key_prefix, keep=KEEP)
    time.sleep(1.0)
    stall(redis_server, 1.5).join()
    faults.append("DEBUG SLEEP 1.5")
    time.sleep(0.5)
    answers = load.stop()

    # A few requests spaced out while Redis hangs once more, so that the lists' newest
    # KEEP events span a lost reply and its second send.
    hung = stall(redis_server, 2.0)
    for i in range(8):
        answers.append(request(server.base, f"/tiles/demo/{ZOOM}/0/{i}.png", timeout=10))
        time.sleep(0.25)
    hung.join()
    faults.append("DEBUG SLEEP 2, 8 requests 0.25 s apart")

    assert all(answer.status for answer in answers), [a.error for a in answers if a.error][:5]
    sent = len(answers)
    assert wait_until(lambda: counted(store) >= sent, seconds=15), (counted(store), sent)
    time.sleep(1.0)  # a batch applied twice would show now
    assert counted(store) == sent
    assert served_counts(client, store) == counted(store, layer=None)

    logs = read_logs(client, key_prefix)
    assert {log.pid for log in logs} == set(workers)
    for log in logs:
        entries = Counter(log.entries)
        assert [entry for entry, times in entries.items() if times > 1] == []
        assert len(log.entries) == KEEP
    # The writers saw the faults, and got over each.
    paused = warnings_by_pid(server, PAUSED)
    assert set(paused) == set(workers), server.log_text()
    assert warnings_by_pid(server, RESUMED) == paused
    assert server.worker_pids() == workers
    assert dropped_events(server) == 0
    figures.update(
        worker_class=worker_class,
        faults=faults,
        requests=summary(answers),
        counted=counted(store),
        paused_warnings=dict(paused),
    )
