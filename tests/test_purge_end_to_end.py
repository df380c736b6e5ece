"""``tilestatus_purge`` against the example project's gunicorn workers, one killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus import liveness
from django_tilestatus.store import StatusStore

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


def local_pids(store: StatusStore) -> set[int]:
    return {pid for host, pid, _ in store.registered() if host == socket.gethostname()}


def processes(store: StatusStore) -> set[tuple[str, int]]:
    """Who is registered, without the last-seen times a live worker's writer still moves."""
    return {(host, pid) for host, pid, _ in store.registered()}


def serve_until_recorded(base: str, store: StatusStore, count: int) -> set[int]:
    """Request tiles from several threads until ``count`` workers of this host have recorded.

    Which worker accepts a connection is up to the kernel, and a worker's events
    reach Redis a moment after its answer, so this polls with a deadline.
    """
    deadline = time.monotonic() + 60
    batch = 0
    while len(pids := local_pids(store)) < count and time.monotonic() < deadline:
        urls = [f"{base}/tiles/demo/3/{x}/{batch % 8}.png" for x in range(8)]
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda url: urllib.request.urlopen(url, timeout=30).read(), urls))
        batch += 1
        time.sleep(0.2)
    return pids


def test_a_killed_worker_is_named_then_deleted_and_live_workers_kept(
    real_redis: Any, real_prefix: str, tmp_path: Path
) -> None:
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "DJANGO_DEBUG": "0",
    }
    store = StatusStore(real_redis, prefix=real_prefix)
    with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as base:
        workers = serve_until_recorded(base, store, 2)
        assert len(workers) == 2, workers
        killed, survivor = sorted(workers)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while liveness.is_running(killed) and time.monotonic() < deadline:
            time.sleep(0.05)

        listed = processes(store)
        lines = purge(env, "--dry-run")
        assert lines[0].startswith(f"Would delete {socket.gethostname()} PID {killed}: ")
        assert "no longer running" in lines[0]
        assert lines[-1].startswith("Would delete 1 process and keep")
        # Nothing deleted: the same processes (the survivor's last-seen time may have moved).
        assert processes(store) == listed

        lines = purge(env)
        assert lines[-1].startswith("Deleted 1 process, kept")
        remaining = {pid for _, pid, _ in store.registered()}
        assert killed not in remaining and survivor in remaining
        assert real_redis.exists(store.log_key(socket.gethostname(), survivor))
        assert not real_redis.exists(store.log_key(socket.gethostname(), killed))
