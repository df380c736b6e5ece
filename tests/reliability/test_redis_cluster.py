"""The app on a real three-master Redis Cluster: tiles, the status page, the purge command.

The example project under gunicorn records through the app's own
``RedisCluster`` client (``REDIS_CLUSTER``). Every key carries one hash tag, so
all of them live in one slot on one node, and every pipeline the app sends
(a process's writes, a status read, a purge) is accepted by the cluster.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from django_tilestatus.storage import RedisStore

from ..support import ROOT, wait_until
from ..support.example_project import is_demo_tile
from ..support.gunicorn import GunicornServer
from ..support.http import request, summary
from ..support.redis_topology import ClusterGroup, cluster_group
from ..support.status import KEEP, assert_bounded, read_logs

pytestmark = [pytest.mark.reliability, pytest.mark.django_db, pytest.mark.timeout(180)]

ZOOM = 4


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterGroup]:
    with cluster_group(tmp_path / "cluster") as group:
        yield group


def purge(env: dict[str, str]) -> list[str]:
    """``manage.py tilestatus_purge`` of the example project, as an operator runs it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
    result = subprocess.run(
        [sys.executable, "example_project/manage.py", "tilestatus_purge"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "example_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def serve(base: str, count: int) -> list[Any]:
    coords = [(i % 16, i // 16 % 16) for i in range(count)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda c: request(base, f"/tiles/demo/{ZOOM}/{c[0]}/{c[1]}.png"), coords)
        )
    pairs = zip(answers, coords, strict=True)
    wrong = [a.path for a, (x, y) in pairs if not is_demo_tile(a, ZOOM, x, y)]
    assert not wrong, wrong[:5]
    return answers


def test_tiles_status_page_and_purge_on_a_redis_cluster(
    cluster: ClusterGroup,
    settings: Any,
    tmp_path: Path,
    key_prefix: str,
    tilestache_config: Path,
    figures: dict[str, Any],
) -> None:
    env = {
        "TILESTATUS_REDIS_URL": cluster.url,
        "TILESTATUS_REDIS_CLUSTER": "1",
        "TILESTATUS_KEY_PREFIX": key_prefix,
        "TILESTATUS_CONFIG": str(tilestache_config),
    }
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "REDIS_URL": cluster.url,
        "REDIS_CLUSTER": True,
        "KEY_PREFIX": key_prefix,
    }
    staff = Client()
    staff.force_login(
        get_user_model().objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    )
    client = cluster.client()
    server = GunicornServer(env, tmp_path / "gunicorn.log", workers=2)
    try:
        server.start()
        workers = server.worker_pids()
        answers = serve(server.base, 200)
        assert wait_until(
            lambda: {log.pid for log in read_logs(client, key_prefix)} == workers, seconds=20
        ), server.log_text()

        # The status page, in every format, shows both workers.
        url = reverse("tilestatus:status")
        json_page = staff.get(url + "?format=json")
        assert json_page.status_code == 200
        assert {p["pid"] for p in json_page.json()["processes"]} == workers
        assert any(
            m["message"].startswith(f"Finished /demo/{ZOOM}/") for m in json_page.json()["messages"]
        )
        for fmt in ("", "?format=text"):
            page = staff.get(url + fmt)
            assert page.status_code == 200, fmt
            text = page.content.decode()
            assert all(str(pid) in text for pid in workers), fmt
            assert f"Finished /demo/{ZOOM}/" in text, fmt

        # The tile statistics reach the cluster with the messages: the metrics count every
        # demo tile served, whichever worker served it.
        def demo_requests() -> float:
            body = staff.get(reverse("tilestatus:metrics")).content.decode()
            return sum(
                sample.value
                for family in text_string_to_metric_families(body)
                for sample in family.samples
                if sample.name == "tilestatus_tile_requests_total"
                and sample.labels.get("layer") == "demo"
            )

        assert wait_until(lambda: demo_requests() == len(answers), seconds=10), demo_requests()

        # A worker killed: the purge command names it and deletes its keys, and only its.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = server.wait_for_workers(lambda pids: victim not in pids and len(pids) == 2)
        assert victim not in replaced
        store = RedisStore(client, key_prefix, keep=KEEP)
        lines = purge(env)
        host = socket.gethostname()
        assert any(line.startswith(f"Deleted {host} PID {victim}:") for line in lines), lines
        assert not client.exists(store.log_key(host, victim))
        registered = {pid for _, pid, _ in store.registry().entries}
        assert victim not in registered
        assert workers - {victim} <= registered

        # The app's keys: one hash slot, so one node; each within KEEP and with a TTL.
        answers += serve(server.base, 40)
        keys = [key.decode() for key in client.scan_iter(match=f"{key_prefix}:*", count=500)]
        assert store.registry_key() in keys
        assert len({client.keyslot(key) for key in keys}) == 1, keys
        holders = []
        for node in cluster.nodes:
            with node.client() as direct:
                if any(direct.scan_iter(match=f"{key_prefix}:*", count=500)):
                    holders.append(node.port)
        assert len(holders) == 1, holders
        assert_bounded(client, key_prefix, read_logs(client, key_prefix))
        figures.update(
            masters=len(cluster.nodes),
            tiles=summary(answers),
            keys=len(keys),
            slots=len({client.keyslot(key) for key in keys}),
            nodes_holding_keys=len(holders),
            purge_output=lines,
        )
    finally:
        server.stop()
        client.close()
