"""Redis hung (SIGSTOP): tiles still come back at once, and workers hold a bounded queue."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ..support import wait_until
from ..support.example_project import PAUSED, RESUMED, dropped_events, is_demo_tile, warnings_by_pid
from ..support.http import request, summary
from ..support.status import assert_bounded, messages_of, read_logs

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(150)]

ZOOM = 4
#: The issue's bound for a tile while Redis hangs: slower counts as failed.
TILE_TIMEOUT = 2.0
#: A gunicorn config file that shrinks the recorder's queue (see its docstring).
SMALL_QUEUE_CONFIG = Path(__file__).with_name("gunicorn_small_queue.py")
#: The recorder queue bound set by SMALL_QUEUE_CONFIG.
SMALL_QUEUE = 100


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_hung_redis_never_holds_a_tile_and_the_queue_stays_bounded(
    start_server, redis_server, key_prefix, figures
) -> None:
    server = start_server(workers=2, options=["-c", str(SMALL_QUEUE_CONFIG)])
    workers = server.worker_pids()
    client = redis_server.client()

    def fetch(i: int):
        x, y = i % 16, i // 16 % 16
        return request(server.base, f"/tiles/demo/{ZOOM}/{x}/{y}.png", timeout=TILE_TIMEOUT), (x, y)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(is_demo_tile(a, ZOOM, *c) for a, c in pool.map(fetch, range(256)))
    assert wait_until(lambda: len(read_logs(client, key_prefix)) == 2, seconds=15)
    rss_before = {pid: rss_kib(pid) for pid in workers}

    redis_server.pause()
    paused_at = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        during = list(pool.map(fetch, range(600)))
        # Keep serving until every worker has noticed, then as much again.
        noticed = wait_until(lambda: set(warnings_by_pid(server, PAUSED)) == workers, seconds=20)
        figures["outage noticed after s"] = round(time.monotonic() - paused_at, 1)
        during += list(pool.map(fetch, range(600, 1200)))
    rss_during = {pid: rss_kib(pid) for pid in workers}
    figures["while hung"] = summary(a for a, _ in during)
    wrong = [(a.path, a.status, a.error) for a, c in during if not is_demo_tile(a, ZOOM, *c)]
    assert not wrong, f"{len(wrong)} of {len(during)} tiles failed, slow or wrong: {wrong[:5]}"
    assert noticed, server.log_text()

    redis_server.resume()
    resumed_at = time.monotonic()
    assert wait_until(lambda: set(warnings_by_pid(server, RESUMED)) == workers, seconds=15), (
        server.log_text()
    )
    figures["recording resumed after s"] = round(time.monotonic() - resumed_at, 1)
    dropped = dropped_events(server)
    # 1,200 requests are 2,400 events, while each worker holds 100 at most.
    assert dropped >= 2 * len(during) - 2 * SMALL_QUEUE - 50, dropped
    last = during[-1][0].path.removeprefix("/tiles")
    logs = wait_until(
        lambda: (
            read_logs(client, key_prefix)
            if any(
                m.startswith(f"Finished {last} ")
                for m in messages_of(read_logs(client, key_prefix))
            )
            else []
        ),
        seconds=10,
    )
    assert logs, "the newest events were not written after Redis came back"
    assert_bounded(client, key_prefix, logs)
    assert server.worker_pids() == workers
    assert all(count == 1 for count in warnings_by_pid(server, PAUSED).values())
    figures.update(
        faults="SIGSTOP of redis-server while 1,200 tiles were served, then SIGCONT",
        queue_bound=SMALL_QUEUE,
        events_dropped=dropped,
        worker_rss_kib_before=rss_before,
        worker_rss_kib_while_hung=rss_during,
    )
