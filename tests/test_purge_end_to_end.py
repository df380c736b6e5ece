"""``tilestatus_purge`` against the example project's gunicorn workers, one killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus import liveness
from django_tilestatus.store import RedisStore

from .conftest import REAL_REDIS_URL
from .servers import ROOT, gunicorn

pytestmark = [pytest.mark.redis, pytest.mark.e2e]


def purge(env: dict[str, str], *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "example_project/manage.py", "tilestatus_purge", *args],
        cwd=ROOT,
        check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def workers_recorded(store: RedisStore, count: int, load: Callable[[], object]) -> set[int]:
    """The PIDs of this host that have recorded, once there are ``count`` of them.

    ``load`` is run again while fewer have: a warm tile takes a worker so little time
    that one worker may answer a whole batch before another accepts a connection.
    """
    deadline = time.monotonic() + 30
    while True:
        load()
        settle = time.monotonic() + 1  # the writer sends within 200 ms
        while True:
            pids = {
                pid for host, pid, _ in store.registry().entries if host == socket.gethostname()
            }
            if len(pids) >= count or time.monotonic() > deadline:
                return pids
            if time.monotonic() > settle:
                break
            time.sleep(0.1)


def settled_registry(store: RedisStore) -> list[Any]:
    """The registry once the writers have sent what they queued (unchanged for 0.5 s)."""
    deadline = time.monotonic() + 10
    listed = sorted(store.registry().entries)
    while True:
        time.sleep(0.5)  # more than two of the writer's 200 ms intervals
        now = sorted(store.registry().entries)
        if now == listed or time.monotonic() > deadline:
            return now
        listed = now


def test_a_killed_worker_is_named_then_deleted_and_live_workers_kept(
    real_redis: Any, real_prefix: str, tmp_path: Path
) -> None:
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "DJANGO_DEBUG": "0",
    }
    store = RedisStore(real_redis, prefix=real_prefix)
    with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as base:
        urls = [f"{base}/tiles/demo/3/{x}/{y}.png" for x in range(8) for y in range(8)]

        def load() -> None:
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(lambda url: urllib.request.urlopen(url, timeout=30).read(), urls))

        workers = workers_recorded(store, 2, load)
        assert len(workers) == 2, workers
        killed, survivor = sorted(workers)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while liveness.is_running(killed) and time.monotonic() < deadline:
            time.sleep(0.05)

        listed = settled_registry(store)
        lines = purge(env, "--dry-run")
        assert lines[0].startswith(f"Would delete {socket.gethostname()} PID {killed}: ")
        assert "no longer running" in lines[0]
        assert lines[-1].startswith("Would delete 1 process and keep")
        assert sorted(store.registry().entries) == listed

        lines = purge(env)
        assert lines[-1].startswith("Deleted 1 process, kept")
        remaining = {pid for _, pid, _ in store.registry().entries}
        assert killed not in remaining and survivor in remaining
        assert real_redis.exists(store.log_key(socket.gethostname(), survivor))
        assert not real_redis.exists(store.log_key(socket.gethostname(), killed))
