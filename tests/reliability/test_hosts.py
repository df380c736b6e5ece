"""Two servers with different HOST share one Redis, and their PIDs collide."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from django_tilestatus.status import get_recent

from ..support import wait_until
from ..support.example_project import is_demo_tile
from ..support.http import Answer, request
from ..support.real_redis import require

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

#: Each server in a PID namespace of its own, so both number their workers
#: alike: PIDs that collide across hosts, for real.
PID_NAMESPACE = ["unshare", "--pid", "--fork", "--kill-child"]


def pid_namespaces_work() -> bool:
    try:
        result = subprocess.run(
            [*PID_NAMESPACE, "true"], capture_output=True, timeout=10, check=False
        )
        return result.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def fetch_concurrently(base: str, path: str, count: int = 40) -> list[Answer]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: request(base, path), range(count)))


def test_two_hosts_with_colliding_pids_stay_apart(start_server, app_on_redis, figures) -> None:
    require(pid_namespaces_work(), "needs unshare --pid (root) to give two servers the same PIDs")
    # One worker each: in two fresh PID namespaces it gets the same PID, whichever
    # worker a busy machine would otherwise have let answer.
    east = start_server(
        workers=1, name="east", env={"TILESTATUS_HOST": "tiles-east"}, wrapper=PID_NAMESPACE
    )
    west = start_server(
        workers=1, name="west", env={"TILESTATUS_HOST": "tiles-west"}, wrapper=PID_NAMESPACE
    )
    paths = {"tiles-east": "/demo/3/1/1.png", "tiles-west": "/demo/3/6/6.png"}
    servers = {"tiles-east": east, "tiles-west": west}

    def every_worker_recorded() -> tuple[list, list] | None:
        """Serve each host's tile concurrently, then whether both workers have recorded.

        Events reach Redis a moment after the answer, so this is polled with a deadline.
        """
        for host, server in servers.items():
            z, x, y = (int(p) for p in paths[host].removesuffix(".png").split("/")[2:])
            answers = fetch_concurrently(server.base, "/tiles" + paths[host])
            assert all(is_demo_tile(answer, z, x, y) for answer in answers)
        processes, messages = get_recent()
        workers = {host: {s.pid for s in processes if s.host == host} for host in paths}
        return (processes, messages) if all(len(p) == 1 for p in workers.values()) else None

    found = wait_until(every_worker_recorded, seconds=30, interval=0.2)
    assert found, "the worker of each host did not record"
    processes, messages = found
    pids = {host: {s.pid for s in processes if s.host == host} for host in paths}
    colliding = pids["tiles-east"] & pids["tiles-west"]
    assert colliding, f"no PID in common: {pids}"
    for status in messages:
        if status.message.startswith(("Started ", "Finished ")) and "/demo/" in status.message:
            assert paths[status.host] in status.message, status
    assert len(processes) == len({(s.host, s.pid) for s in processes})
    figures.update(
        pids={h: sorted(p) for h, p in pids.items()},
        colliding=sorted(colliding),
        processes=len(processes),
    )
