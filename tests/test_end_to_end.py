"""The example project under gunicorn with two workers, recording into a real Redis."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from django_tilestatus.statistics.schema import RequestCount
from django_tilestatus.storage import RedisStore

from .support import wait_until
from .support.example_project import write_tilestache_config
from .support.gunicorn import GunicornServer
from .support.http import raw_exchange, request
from .support.real_redis import REAL_REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

ZOOM = 20  # tiles nobody else asks for, so each one is rendered (cold)
KEEP = 20


def finishing_pids(logs: list[Any]) -> set[int]:
    return {log.pid for log in logs if any(m.startswith("Finished /demo/") for _, m in log.entries)}


def counted(store: RedisStore, zoom: int) -> int:
    """Requests for the demo layer at ``zoom`` the workers have counted in Redis."""
    fields = store.stat_totals().fields
    return int(
        sum(
            n
            for record, n in fields.items()
            if isinstance(record, RequestCount) and (record.layer, record.zoom) == ("demo", zoom)
        )
    )


def wait_for_recorded(store: RedisStore, tiles: int, workers: int) -> list[Any]:
    """The logs, once the workers have written every one of the ``tiles`` requests at
    ``ZOOM`` (their counts reach Redis in the same write as their events) and each of
    ``workers`` processes has a ``Finished`` kept.

    The workers' writers send their events a moment after each answer: poll, with a
    deadline, rather than read once. (Each list keeps only the last KEEP events, cache
    lock events among them, so how many ``Finished`` are kept is no measure of it.)
    """
    seen: list[Any] = [0, []]

    def recorded() -> list[Any]:
        seen[:] = [counted(store, ZOOM), store.read()]
        done = seen[0] == tiles and len(finishing_pids(seen[1])) >= workers
        return seen[1] if done else []

    return wait_until(
        recorded,
        30,
        what=lambda: (
            f"{tiles} requests counted and {workers} workers with a Finished kept "
            f"(counted {seen[0]}; Finished kept by {sorted(finishing_pids(seen[1]))})"
        ),
    )


def test_two_workers_serve_and_record(real_redis: Any, real_prefix: str, tmp_path: Any) -> None:
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "DJANGO_DEBUG": "0",
        # A tile cache of its own: every tile is rendered, whatever another test served.
        "TILESTATUS_CONFIG": str(write_tilestache_config(tmp_path)),
    }
    xs = random.sample(range(2**ZOOM), 40)
    paths = [f"/tiles/demo/{ZOOM}/{x}/{x % 1000}.png" for x in xs]
    with GunicornServer(env, tmp_path / "gunicorn.log", workers=2) as server:
        base = server.base
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda p: request(base, p, timeout=30), paths))
        assert all(
            a.status == 200
            and a.headers.get("content-type") == "image/png"
            and a.body[:8] == b"\x89PNG\r\n\x1a\n"
            for a in answers
        )
        assert request(base, "/tiles/demo/preview.html").status == 200
        assert request(base, "/tiles/nowhere/1/0/0.png").status == 404
        assert request(base, "/tiles/demo/zz/0/0.png").status == 400
        assert request(base, "/tiles/favicon.ico").status == 404
        assert request(base, "/tiles/demo/1/0/0.png", method="POST").status == 405
        status, headers, extra = raw_exchange(base, "HEAD", b"/tiles/demo/1/0/0.png")
        assert status == 200 and int(headers["Content-Length"]) > 0 and extra == b""
        # The example project's fast path answered before Django's middleware, and kept
        # what that middleware enforces: its headers, and Django's 400 for a bad host.
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        refused = request(base, "/tiles/demo/1/0/0.png", headers={"Host": "evil.example"})
        assert refused.status == 400

        store = RedisStore(real_redis, prefix=real_prefix, keep=KEEP)
        logs = wait_for_recorded(store, tiles=len(paths), workers=2)

    finishing = finishing_pids(logs)
    assert len(finishing) == 2, f"Finished events from {finishing}"
    for log in logs:
        assert real_redis.llen(store.log_key(log.host, log.pid)) <= KEEP
        assert real_redis.ttl(store.log_key(log.host, log.pid)) > 0
        chronological = [m for _, m in reversed(log.entries)]
        open_path = None
        for message in chronological:
            if message.startswith("Started "):
                open_path = message.removeprefix("Started ")
            elif message.startswith("Finished "):
                path = message.removeprefix("Finished ").rsplit(" in ", 1)[0]
                # The oldest kept Finished may have lost its Started to the KEEP window.
                assert open_path in (path, None), chronological
                open_path = None
    assert real_redis.ttl(store.registry_key()) > 0
