"""``tilestatus_purge`` against the example project's gunicorn workers, one killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.reading import liveness
from django_tilestatus.storage import RedisStore

from .support import ROOT, wait_until
from .support.example_project import write_tilestache_config
from .support.gunicorn import GunicornServer
from .support.http import request
from .support.real_redis import REAL_REDIS_URL

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


def serve_until_every_worker_recorded(server: GunicornServer, store: RedisStore) -> set[int]:
    """Concurrent tile requests until each worker has recorded; their PIDs.

    On a busy machine one worker may take a whole batch, so batches go on until both
    workers are in the registry (or 20 seconds pass).
    """
    paths = [f"/tiles/demo/3/{x}/{y}.png" for x in range(8) for y in range(8)]

    def recorded() -> set[int]:
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda path: request(server.base, path, timeout=30), paths))
        assert all(answer.ok for answer in answers), [a for a in answers if not a.ok][:3]
        workers = server.worker_pids()
        pids = {pid for host, pid, _ in store.registry().entries if host == socket.gethostname()}
        return workers if len(workers) == 2 and workers <= pids else set()

    return wait_until(recorded, seconds=20, interval=0.3)


def processes(store: RedisStore) -> set[tuple[str, int]]:
    """Who is registered, without the last-seen times a live worker's writer still moves."""
    return {(host, pid) for host, pid, _ in store.registry().entries}


def test_a_killed_worker_is_named_then_deleted_and_live_workers_kept(
    real_redis: Any, real_prefix: str, tmp_path: Path
) -> None:
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "DJANGO_DEBUG": "0",
        "TILESTATUS_CONFIG": str(write_tilestache_config(tmp_path)),  # a tile cache of its own
    }
    store = RedisStore(real_redis, prefix=real_prefix)
    with GunicornServer(env, tmp_path / "gunicorn.log", workers=2) as server:
        workers = serve_until_every_worker_recorded(server, store)
        assert len(workers) == 2, workers
        killed, survivor = sorted(workers)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: not liveness.is_running(killed), seconds=10, interval=0.05)

        listed = processes(store)
        lines = purge(env, "--dry-run")
        assert lines[0].startswith(f"Would delete {socket.gethostname()} PID {killed}: ")
        assert "no longer running" in lines[0]
        assert lines[-1].startswith("Would delete 1 process and keep")
        # Nothing deleted: the same processes (the survivor's last-seen time may have moved).
        assert processes(store) == listed

        lines = purge(env)
        assert lines[-1].startswith("Deleted 1 process, kept")
        remaining = {pid for _, pid, _ in store.registry().entries}
        assert killed not in remaining and survivor in remaining
        assert real_redis.exists(store.log_key(socket.gethostname(), survivor))
        assert not real_redis.exists(store.log_key(socket.gethostname(), killed))
