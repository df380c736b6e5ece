"""Processes of one HOST in different PID namespaces, as pods on one Kubernetes node under
``HOST = NODE_NAME``: a PID is judged only in the namespace that sees it.

Workers in one namespace and ``tilestatus_purge`` in another (``unshare --pid --fork
--mount-proc``, as a container would run it) share a HOST: the purge must not take the
live workers for dead because their PIDs do not run in its process table, and the
host's own purge must not either for a worker started in a namespace of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from django_tilestatus.storage import RedisStore

from ..support import ROOT, wait_until
from ..support.gunicorn import GunicornServer
from ..support.http import request
from ..support.real_redis import require

pytestmark = [pytest.mark.reliability, pytest.mark.redis, pytest.mark.timeout(150)]

HOST = "tiles-node-1"
#: A PID namespace of its own, with its own /proc: what a container's processes see.
OWN_NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def own_namespaces_work() -> bool:
    try:
        result = subprocess.run(
            [*OWN_NAMESPACE, "true"], capture_output=True, timeout=10, check=False
        )
        return result.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def needs_own_namespaces() -> None:
    require(
        own_namespaces_work(),
        "needs `unshare --pid --fork --mount-proc` (util-linux, as root) for PID namespaces",
    )


def purge(env: dict[str, str], wrapper: Sequence[str] = ()) -> list[str]:
    """``manage.py tilestatus_purge -v 2`` of the example project, under ``wrapper``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
    environment.update(
        {"DJANGO_SETTINGS_MODULE": "example_project.settings", "DJANGO_DEBUG": "0", **env}
    )
    result = subprocess.run(
        [*wrapper, sys.executable, "example_project/manage.py", "tilestatus_purge", "-v", "2"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout.splitlines()


def recorded_pids(store: RedisStore) -> set[int]:
    return {pid for host, pid, _ in store.registry().entries if host == HOST}


def serve_until_recorded(server: GunicornServer, store: RedisStore, count: int) -> set[int]:
    """Tiles until ``count`` processes of HOST are in the registry; their PIDs as recorded."""

    paths = [f"/tiles/demo/3/{x}/{y}.png" for x in range(8) for y in range(2)]

    def recorded() -> set[int] | None:
        # Concurrent, so that every worker takes some, however the machine schedules them.
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda path: request(server.base, path, timeout=30), paths))
        assert all(answer.ok for answer in answers)
        pids = recorded_pids(store)
        return pids if len(pids) >= count else None

    found = wait_until(recorded, seconds=30, interval=0.3)
    assert found, f"the workers did not record: {recorded_pids(store)}"
    return found


def server_env(redis_server: Any, key_prefix: str, tilestache_config: Any) -> dict[str, str]:
    return {
        "TILESTATUS_REDIS_URL": redis_server.url,
        "TILESTATUS_KEY_PREFIX": key_prefix,
        "TILESTATUS_CONFIG": str(tilestache_config),
        "TILESTATUS_HOST": HOST,
    }


def test_a_purge_in_another_pid_namespace_keeps_the_live_workers(
    start_server, redis_server: Any, key_prefix: str, tilestache_config: Any, figures: dict
) -> None:
    needs_own_namespaces()
    server = start_server(workers=2, env={"TILESTATUS_HOST": HOST})
    store = RedisStore(redis_server.client(), key_prefix)
    # Every worker must have recorded: one that has not would show nothing either way.
    workers = serve_until_recorded(server, store, 2)
    assert workers == server.worker_pids()

    env = server_env(redis_server, key_prefix, tilestache_config)
    lines = purge(env, wrapper=OWN_NAMESPACE)

    # None of the workers' PIDs runs in the purge's process table, yet they are live:
    # of another namespace and not silent, they are kept.
    for pid in workers:
        assert f"Kept {HOST} PID {pid}: another PID namespace, last seen" in "\n".join(lines)
    assert not [line for line in lines if line.startswith("Deleted ")], lines
    assert lines[-1].startswith("Nothing to delete; kept"), lines
    assert recorded_pids(store) >= workers
    assert all(store.client.exists(store.log_key(HOST, pid)) for pid in workers)
    # The host's own purge, in the workers' namespace, judges them alive by their PIDs.
    assert lines[-1] == purge(env)[-1]
    assert recorded_pids(store) >= workers
    figures.update(workers=sorted(workers), purge_in_own_namespace=lines)


def test_a_worker_in_a_pid_namespace_of_its_own_is_kept_by_the_hosts_purge(
    start_server, redis_server: Any, key_prefix: str, tilestache_config: Any, figures: dict
) -> None:
    needs_own_namespaces()
    server = start_server(
        workers=1, name="pod", env={"TILESTATUS_HOST": HOST}, wrapper=OWN_NAMESPACE
    )
    store = RedisStore(redis_server.client(), key_prefix)
    [inside] = serve_until_recorded(server, store, 1)  # its PID as its namespace numbers it
    [outside] = server.worker_pids()  # the same worker, as this namespace numbers it
    assert inside != outside

    lines = purge(server_env(redis_server, key_prefix, tilestache_config))

    assert len(lines) == 2, lines
    assert lines[0].startswith(f"Kept {HOST} PID {inside}: another PID namespace, last seen ")
    assert lines[1] == "Nothing to delete; kept 1 process."
    assert recorded_pids(store) == {inside}
    assert store.client.exists(store.log_key(HOST, inside))
    figures.update(pid_inside=inside, pid_outside=outside, purge=lines)
