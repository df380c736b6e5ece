"""Production Redis shapes on loopback: a master with a replica behind three sentinels,
and a three-master Redis Cluster, each process in a private directory.

Every process binds 127.0.0.1 on free ports, keeps nothing on disk
(``--save "" --appendonly no``) and is stopped, with SIGKILL if it will not
stop, by ``stop()``, which the tests call in a ``finally``. The binaries are
Debian's ``redis-server`` (which is also the sentinel, with ``--sentinel``) and
``redis-cli`` (``--cluster create``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from . import free_port, wait_until
from .redis_server import RedisServer

#: Seconds the sentinels or cluster nodes may take to agree once started.
AGREE_TIMEOUT = 60.0
#: The Sentinel service name the tests use.
SERVICE = "tilestatus-test"
#: Milliseconds without an answer before a sentinel calls the master down. Short, so a
#: test's failover happens within seconds (yet a busy machine does not trigger one);
#: production keeps the default (30 s) or so.
DOWN_AFTER_MS = 2000

#: A node that refuses while the others agree: not ready yet.
REFUSED = (redis.RedisError, OSError)


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (Debian package redis-server)")
    return path


def stop_all(processes: list[RedisServer]) -> None:
    for process in processes:
        with contextlib.suppress(Exception):
            process.stop()
    for process in processes:  # whatever a failed stop left behind
        with contextlib.suppress(Exception):
            process.kill()


class SentinelGroup:
    """A master, one replica and three sentinels watching them as ``SERVICE``."""

    def __init__(self, workdir: Path):
        self.master = RedisServer(workdir / "master")
        self.replica = RedisServer(
            workdir / "replica", options=["--replicaof", "127.0.0.1", str(self.master.port)]
        )
        config = (
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.sentinels = [
            RedisServer(workdir / f"sentinel-{n}", sentinel_config=config) for n in range(3)
        ]

    @property
    def processes(self) -> list[RedisServer]:
        return [self.master, self.replica, *self.sentinels]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [sentinel.address for sentinel in self.sentinels]

    def start(self) -> None:
        try:
            self.master.start()
            self.replica.start()
            for sentinel in self.sentinels:
                sentinel.start()
            wait_until(
                self._ready,
                AGREE_TIMEOUT,
                ignore=REFUSED,
                what="the sentinels seeing the replica and each other",
            )
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        """Replication is up, and each sentinel knows the replica and the two others."""
        with self.replica.client() as client:
            if client.info("replication").get("master_link_status") != "up":
                return False
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(SERVICE)
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                return False
        return True

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers names it."""
        ports = self.master_ports()
        return ports[0] if ports else None

    def master_ports(self) -> list[int]:
        """The master's port as each sentinel that answers names it. The sentinel that led
        a failover knows of it first; the others learn it within a few seconds."""
        ports = []
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    _, port = client.sentinel_get_master_addr_by_name(SERVICE)
            except (redis.RedisError, OSError, TypeError):
                continue
            ports.append(int(port))
        return ports

    def stop(self) -> None:
        stop_all(self.processes)


class ClusterGroup:
    """Three masters (no replicas) made into one Redis Cluster by ``redis-cli``."""

    def __init__(self, workdir: Path, masters: int = 3):
        self.nodes = [
            RedisServer(
                workdir / f"node-{n}",
                options=[
                    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    # The cluster bus port defaults to port + 10000, which may be taken.
                    *("--cluster-port", str(free_port())),
                    # Generous, so a node starved of CPU on a busy machine is not failed.
                    *("--cluster-node-timeout", "15000"),
                ],
            )
            for n in range(masters)
        ]
        #: What each node said last, for the error if they never agree.
        self.seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def client(self) -> RedisCluster:
        return RedisCluster(
            "127.0.0.1", self.nodes[0].port, socket_timeout=2, socket_connect_timeout=2
        )

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.start()
            create = [
                binary("redis-cli"),
                "--cluster",
                "create",
                *[f"127.0.0.1:{node.port}" for node in self.nodes],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ]
            result = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {result.stdout}")
            wait_until(
                self._ready,
                AGREE_TIMEOUT,
                ignore=REFUSED,
                what=lambda: (
                    f"cluster_state:ok on every node (seen: {self.seen}); "
                    + " | ".join(node.log_text()[-800:] for node in self.nodes)
                ),
            )
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        self.seen = []
        for node in self.nodes:
            with node.client() as client:
                info = client.cluster("info")
            self.seen.append(
                {key: info.get(key) for key in ("cluster_state", "cluster_known_nodes")}
            )
            if (
                info.get("cluster_state") != "ok"
                or int(info.get("cluster_known_nodes", 0)) != len(self.nodes)
                or int(info.get("cluster_slots_ok", 0)) != 16384
            ):
                return False
        return True

    def stop(self) -> None:
        stop_all(self.nodes)


@contextlib.contextmanager
def sentinel_group(workdir: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(workdir)
    group.start()
    try:
        yield group
    finally:
        group.stop()


@contextlib.contextmanager
def cluster_group(workdir: Path) -> Iterator[ClusterGroup]:
    group = ClusterGroup(workdir)
    group.start()
    try:
        yield group
    finally:
        group.stop()
