"""Redis killed while tiles are served: tiles keep coming, recording comes back by itself."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from ..support import wait_until
from ..support.example_project import PAUSED, RESUMED, dropped_events, is_demo_tile, warnings_by_pid
from ..support.http import request, summary
from ..support.status import KEEP, assert_bounded, logs_with, read_logs

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(150)]

ZOOM = 5  # 1024 tiles: the first request of each is rendered, later ones come from cache
#: The most one tile may take while Redis is down (client timeout: slower counts as failed).
#: Generous, as tiles here are rendered by 2 workers for 4 clients on a shared machine.
TILE_TIMEOUT = 5.0


def serve_tiles(base: str, coords: list[tuple[int, int]], clients: int = 4) -> list[tuple]:
    def one(coord: tuple[int, int]) -> tuple:
        x, y = coord
        answer = request(base, f"/tiles/demo/{ZOOM}/{x}/{y}.png", timeout=TILE_TIMEOUT)
        return answer, coord

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(one, coords))


def assert_all_right(results: list[tuple]) -> None:
    wrong = [
        (a.path, a.status, a.error) for a, (x, y) in results if not is_demo_tile(a, ZOOM, x, y)
    ]
    assert not wrong, f"{len(wrong)} of {len(results)} tiles failed or were wrong: {wrong[:5]}"


def logged_by_each(server, needle: str, expected: dict[int, int]) -> bool:
    """Whether each worker logged ``needle`` as many times as expected, so far."""
    return warnings_by_pid(server, needle) == expected


def coords(start: int, count: int) -> list[tuple[int, int]]:
    return [((start + i) % 32, (start + i) // 32 % 32) for i in range(count)]


def test_tiles_survive_two_redis_crashes_and_recording_resumes(
    start_server, redis_server, key_prefix, figures
) -> None:
    server = start_server(workers=2)
    workers = server.worker_pids()
    client = redis_server.client()

    before = serve_tiles(server.base, coords(0, 40))
    assert_all_right(before)
    assert wait_until(lambda: len(read_logs(client, key_prefix)) == 2, seconds=15)

    for outage in (1, 2):
        each_once_more = dict.fromkeys(workers, outage)
        redis_server.kill()
        during = serve_tiles(server.base, coords(100 * outage, 100))
        # Each worker noticed the outage and said so...
        warned = wait_until(partial(logged_by_each, server, PAUSED, each_once_more), seconds=15)
        assert warned, server.log_text()
        # ...once: the requests after the warning add none.
        during += serve_tiles(server.base, coords(100 * outage + 100, 100))
        figures[f"outage {outage}"] = summary(a for a, _ in during)
        assert_all_right(during)
        assert warnings_by_pid(server, PAUSED) == each_once_more
        last_x, last_y = coords(100 * outage + 100, 100)[-1]

        redis_server.restart()  # same port, empty: what was recorded before is gone
        restarted_at = time.monotonic()
        client = redis_server.client()
        # What the workers held in memory during the outage reaches Redis by itself,
        # without any new request and without restarting the workers.
        held = f"Finished /demo/{ZOOM}/{last_x}/{last_y}.png"
        logs = wait_until(partial(logs_with, client, key_prefix, held), seconds=15)
        assert logs, f"{held!r} never reached Redis after the restart"
        assert wait_until(partial(logged_by_each, server, RESUMED, each_once_more), seconds=15)
        figures[f"outage {outage}"]["all_resumed_within_s"] = round(
            time.monotonic() - restarted_at, 1
        )

    after = serve_tiles(server.base, coords(900, 40))
    figures["before and after"] = summary(a for a, _ in before + after)
    assert_all_right(after)
    assert server.worker_pids() == workers, "gunicorn replaced its workers"
    logs = wait_until(
        lambda: (
            len(found := logs_with(client, key_prefix, f"Finished /demo/{ZOOM}/")) == 2 and found
        ),
        seconds=15,
    )
    assert {log.pid for log in logs} == workers
    assert all(len(log.entries) <= KEEP for log in logs)
    assert_bounded(client, key_prefix, logs)
    paused = warnings_by_pid(server, PAUSED)
    figures.update(
        faults="2 x SIGKILL of redis-server, restarted on the same port, empty",
        paused_warnings=dict(paused),
        resumed_warnings=dict(warnings_by_pid(server, RESUMED)),
        events_dropped=dropped_events(server),
        worker_restarts=0,
    )
    assert paused == dict.fromkeys(workers, 2)  # once per outage, per worker
    assert redis_server.password not in server.log_text()
