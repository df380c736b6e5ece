"""The shared test Redis: where it is, how to reach it, and how to leave it clean.

It is ``TILESTATUS_TEST_REDIS_URL`` (default database 15 on the local server).
Tests there use a key prefix of their own (``new_prefix()``) and delete only
their own keys, so they never assume they own the server. Every prefix of one
test run starts with ``run_pattern()``'s text, so what a run left behind can be
told from what other programs (another checkout's tests) keep there. Under
``CI=true`` an unreachable Redis fails those tests instead of skipping them.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import redis

REAL_REDIS_URL = os.environ.get("TILESTATUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: Under CI a test that needs a real component fails, not skips, when it is missing.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: Names this test run; set by the first process (pytest-xdist's workers inherit it).
RUN_VARIABLE = "TILESTATUS_TEST_RUN"


def run_mark() -> str:
    """This test run's mark, the same in every pytest-xdist worker of the run."""
    return os.environ.setdefault(RUN_VARIABLE, uuid.uuid4().hex[:8])


def new_prefix() -> str:
    """A key prefix no other test, and no other test run, uses."""
    return f"tilestatus-test-{run_mark()}-{uuid.uuid4().hex[:8]}"


def run_pattern() -> str:
    """A SCAN pattern matching every key this run's tests made (under ``new_prefix()``)."""
    return f"tilestatus-test-{run_mark()}-*"


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, except under CI, where the test must fail."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI must run this test)")
        pytest.skip(reason)


def real_redis_client() -> redis.Redis:
    """A client for the real test Redis, or skip (fail under CI) if it is down."""
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        require(False, f"no Redis at {REAL_REDIS_URL}: {exc}")
    return client


def delete_prefixed(client: Any, prefix: str) -> None:
    """Delete the keys under ``prefix`` only (SCAN is fine in test clean-up)."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
