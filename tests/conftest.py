"""Shared fixtures: a clean fakeredis per test, and a real Redis where the truth matters.

The real Redis is ``TILESTATUS_TEST_REDIS_URL`` (default database 15 on the
local server). Tests there use a key prefix of their own and delete only
their own keys, so they never assume they own the server. Under ``CI=true``
an unreachable Redis fails those tests instead of skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from django_tilestatus import connection, recorder, runtime
from django_tilestatus.store import RedisStore

from .clients import PATHS, make_client

REAL_REDIS_URL = os.environ.get("TILESTATUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def real_redis_client() -> redis.Redis:
    """A client for the real test Redis, or skip (fail under CI) if it is down."""
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = f"no Redis at {REAL_REDIS_URL}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI must run the real-Redis tests)")
        pytest.skip(message)
    return client


def delete_prefixed(client: Any, prefix: str) -> None:
    """Delete the keys under ``prefix`` only (SCAN is fine in test clean-up)."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


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


def flush_events() -> None:
    """Write this process's queued events now, as the writer would within 200 ms."""
    current = recorder.existing_recorder()
    if current is not None:
        assert current.flush(timeout=5), "queued events could not be written"
