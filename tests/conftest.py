"""Shared fixtures: a clean fakeredis per test, and a real Redis where the truth matters.

Fixtures only; the helpers they use, and that tests import, are in ``tests/support/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from django_tilestatus import connection, runtime
from django_tilestatus.storage import RedisStore

from .support.clients import PATHS, make_client
from .support.real_redis import REAL_REDIS_URL, delete_prefixed, real_redis_client


@pytest.fixture(autouse=True)
def _fresh_state(settings: Any) -> Iterator[None]:
    """Each test starts with an empty fakeredis and no recorder from a previous test."""
    runtime.reset()
    connection.get_client().flushdb()
    yield
    runtime.reset()


@pytest.fixture
def real_redis() -> Iterator[redis.Redis]:
    client = real_redis_client()
    yield client
    client.close()


@pytest.fixture
def real_prefix(real_redis: redis.Redis) -> Iterator[str]:
    """A key prefix no other test run uses; its keys are deleted afterwards."""
    prefix = f"tilestatus-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefixed(real_redis, prefix)


@pytest.fixture
def use_real_redis(settings: Any, real_prefix: str) -> str:
    """Point the app at the real Redis under a private prefix; returns the prefix."""
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "REDIS_URL": REAL_REDIS_URL,
        "KEY_PREFIX": real_prefix,
    }
    return real_prefix


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.redis)])
def redis_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The same tests on fakeredis (fast) and on a real Redis (the truth)."""
    if request.param == "fake":
        client = connection.get_client()
        yield client
    else:
        client = real_redis_client()
        yield client
        client.close()


@pytest.fixture
def store(redis_client: Any) -> Iterator[RedisStore]:
    prefix = f"tilestatus-test-{uuid.uuid4().hex[:12]}"
    yield RedisStore(redis_client, prefix=prefix, keep=5, ttl=600)
    delete_prefixed(redis_client, prefix)


@pytest.fixture(params=PATHS)
def tile_client(request: pytest.FixtureRequest, settings: Any) -> Any:
    """Make test clients for one way of serving tiles: Django, the fast path's middleware
    or its WSGI wrapper; every test using it runs on all three."""

    def make(**kwargs: Any) -> Any:
        return make_client(request.param, settings, **kwargs)

    return make
