"""Fixtures that start real processes: a private Redis and the example project.

Every fault is injected into a ``redis-server`` of the test's own, on a free
loopback port, so the shared Redis the rest of the suite uses is never
touched. Servers are stopped at teardown whatever state the test left them in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support import ROOT
from ..support.example_project import write_tilestache_config
from ..support.gunicorn import GunicornServer
from ..support.redis_server import RedisServer

#: Where each test leaves the figures it saw (git-ignored), for docs/reliability.md.
FIGURES_DIR = ROOT / "tests" / "artifacts" / "reliability"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis, password-protected so a leak of it would be seen."""
    server = RedisServer(tmp_path, password=f"pw-{uuid.uuid4().hex}")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_prefix() -> str:
    return f"tilestatus-rel-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tilestache_config(tmp_path: Path) -> Path:
    return write_tilestache_config(tmp_path)


@pytest.fixture
def start_server(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, tilestache_config: Path
) -> Iterator[Callable[..., GunicornServer]]:
    """Start the example project on the private Redis; all are stopped at teardown."""
    started: list[GunicornServer] = []

    def start(workers: int = 2, name: str = "server", **kwargs: Any) -> GunicornServer:
        env = {
            "TILESTATUS_REDIS_URL": redis_server.url,
            "TILESTATUS_KEY_PREFIX": key_prefix,
            "TILESTATUS_CONFIG": str(tilestache_config),
            **kwargs.pop("env", {}),
        }
        server = GunicornServer(env, tmp_path / f"{name}.log", workers=workers, **kwargs)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def app_on_redis(settings: Any, redis_server: RedisServer, key_prefix: str) -> str:
    """Point this process's app (get_recent, the status view) at the private Redis."""
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "REDIS_URL": redis_server.url,
        "KEY_PREFIX": key_prefix,
    }
    return key_prefix


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A dict the test fills with what it saw; written to FIGURES_DIR when it passes."""
    seen: dict[str, Any] = {}
    yield seen
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    name = request.node.name.replace("/", "_")
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(seen, indent=2, default=str) + "\n")
