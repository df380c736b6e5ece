"""TileStache's Redis and Multi caches behind the app's tile server.

The Redis cache talks to the real test Redis (``TILESTATUS_TEST_REDIS_URL``)
under a key prefix of its own; under ``CI=true`` a missing Redis fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.providers import decode, png, server_for

SOLID = {"provider": {"class": "tests.providers:Solid", "kwargs": {"color": "#00ff00"}}}


def disk(path: Path) -> dict[str, Any]:
    return {"name": "Disk", "path": str(path), "umask": "0022"}


def cached_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.png"))


@pytest.mark.redis
def test_redis_cache_saves_a_rendered_tile_and_serves_it_from_redis(
    real_redis: redis.Redis, real_prefix: str
) -> None:
    where = real_redis.connection_pool.connection_kwargs
    cache = {
        "name": "Redis",
        "host": where["host"],
        "port": where["port"],
        "db": where["db"],
        "key prefix": f"{real_prefix}:tiles",  # under the prefix, so its keys are deleted
    }
    server = server_for({"solid": {**SOLID, "cache lifespan": 300}}, cache)

    first = server.handle("/solid/2/1/3.png")

    key = f"{real_prefix}:tiles/solid/2/1/3.PNG"
    assert real_redis.get(key) == first.body
    assert 0 < real_redis.ttl(key) <= 300
    assert real_redis.get(key + "-lock") is None, "the cache lock was released"
    marker = png("#abcdef")
    real_redis.set(key, marker, keepttl=True)
    assert server.handle("/solid/2/1/3.png").body == marker


def test_multi_cache_saves_to_every_tier(tmp_path: Path) -> None:
    cache = {"name": "Multi", "tiers": [disk(tmp_path / "fast"), disk(tmp_path / "slow")]}
    server = server_for({"solid": SOLID}, cache)

    body = server.handle("/solid/1/0/1.png").body

    assert decode(body).getpixel((0, 0)) == (0, 255, 0, 255)
    for tier in ("fast", "slow"):
        (saved,) = cached_files(tmp_path / tier)
        assert saved.read_bytes() == body


def test_multi_cache_reads_through_to_a_lower_tier_and_fills_the_upper(tmp_path: Path) -> None:
    cache = {"name": "Multi", "tiers": [disk(tmp_path / "fast"), disk(tmp_path / "slow")]}
    server = server_for({"solid": SOLID}, cache)
    server.handle("/solid/1/0/1.png")
    (upper,) = cached_files(tmp_path / "fast")
    (lower,) = cached_files(tmp_path / "slow")
    upper.unlink()
    marker = png("#abcdef")
    lower.write_bytes(marker)

    assert server.handle("/solid/1/0/1.png").body == marker
    assert upper.read_bytes() == marker
