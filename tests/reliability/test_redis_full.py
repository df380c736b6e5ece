"""Redis full (maxmemory, noeviction): writes are refused, tiles are not."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..support import wait_until
from ..support.example_project import PAUSED, is_demo_tile, warnings_by_pid
from ..support.http import request, summary
from ..support.status import assert_bounded, read_logs

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(150)]

ZOOM = 4


def serve(base: str, count: int, offset: int = 0) -> list:
    def fetch(i: int):
        x, y = (offset + i) % 16, (offset + i) // 16 % 16
        return request(base, f"/tiles/demo/{ZOOM}/{x}/{y}.png", timeout=5), (x, y)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(fetch, range(count)))


def assert_right(answers: list) -> None:
    wrong = [(a.path, a.status, a.error) for a, c in answers if not is_demo_tile(a, ZOOM, *c)]
    assert not wrong, f"{len(wrong)} of {len(answers)} tiles failed or were wrong: {wrong[:5]}"


def test_full_redis_refuses_writes_and_tiles_are_still_served(
    start_server, redis_server, key_prefix, figures
) -> None:
    server = start_server(workers=2)
    client = redis_server.client()
    assert_right(serve(server.base, 64))
    assert wait_until(lambda: len(read_logs(client, key_prefix)) == 2, seconds=15)

    used = redis_server.info("memory")["used_memory"]
    redis_server.set_config("maxmemory-policy", "noeviction")
    redis_server.set_config("maxmemory", str(used // 2))  # full: every write is refused
    during = serve(server.base, 400, offset=64)
    assert_right(during)
    warned = wait_until(lambda: warnings_by_pid(server, PAUSED), seconds=10)
    assert warned, server.log_text()
    assert all(
        "Redis refused the write (OutOfMemoryError" in line and "/demo/" not in line
        for line in server.log_lines(PAUSED)
    ), server.log_lines(PAUSED)
    assert all(count == 1 for count in warned.values()), warned
    logs = read_logs(client, key_prefix)
    assert len(logs) == 2
    assert_bounded(client, key_prefix, logs)
    figures["full"] = summary(a for a, _ in during)
    figures["maxmemory"] = used // 2
    figures["log"] = server.log_lines(PAUSED)[0].split(": ", 1)[1]


def test_a_redis_at_its_memory_limit_keeps_lists_bounded_in_order_without_duplicates(
    start_server, redis_server, key_prefix, figures
) -> None:
    """Memory flips between full and not full while tiles are served, so some
    writes are refused half-way; what is kept must stay in order, once each."""
    server = start_server(workers=2)
    client = redis_server.client()
    redis_server.set_config("maxmemory-policy", "noeviction")
    assert_right(serve(server.base, 32))
    used = redis_server.info("memory")["used_memory"]
    stop = threading.Event()
    flips = 0

    def flip() -> None:
        nonlocal flips
        while not stop.wait(0.02):
            limit = used // 2 if flips % 2 else used * 4
            redis_server.set_config("maxmemory", str(limit))
            flips += 1

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        during = serve(server.base, 800, offset=32)
    finally:
        stop.set()
        flipper.join(5)
    redis_server.set_config("maxmemory", "0")
    assert_right(during)
    last = during[-1][0].path.removeprefix("/tiles")
    logs = wait_until(
        lambda: (
            (found := read_logs(client, key_prefix))
            and any(m.startswith(f"Finished {last} ") for log in found for _, m in log.entries)
            and found
        ),
        seconds=10,
    )
    assert logs, "recording did not resume once Redis had room again"
    assert_bounded(client, key_prefix, logs)
    for log in logs:
        stamps = [stamp for stamp, _ in log.entries]
        assert len(set(log.entries)) == len(log.entries), f"duplicated events: {log.entries}"
        assert stamps == sorted(stamps, reverse=True), f"out of order: {log.entries}"
    figures["flipping"] = summary(a for a, _ in during)
    figures["maxmemory flips"] = flips
    figures["refusals logged"] = dict(warnings_by_pid(server, PAUSED))
