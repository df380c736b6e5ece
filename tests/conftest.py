"""Shared fixtures: a clean fakeredis per test, and a real Redis where the truth matters;
and, when the run ends, a check that it left no key in the real Redis.

Fixtures only; the helpers they use, and that tests import, are in ``tests/support/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from django_tilestatus import connection, runtime
from django_tilestatus.storage import RedisStore

from .support.clients import PATHS, make_client
from .support.example_project import copy_database, staff_database
from .support.real_redis import (
    REAL_REDIS_URL,
    delete_prefixed,
    new_prefix,
    real_redis_client,
    run_mark,
    run_pattern,
)


def pytest_configure(config: pytest.Config) -> None:
    # Before pytest-xdist starts its workers, which inherit the run's mark.
    run_mark()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test whose ``xdist_group`` a ``--dist loadgroup`` run lost.

    pytest-xdist sends a group to one worker by suffixing its tests' node ids with
    ``@group``; where a pytest release ignores that suffix, each test of a group
    would build the group's costly fixture again on another worker, silently.
    """
    if not getattr(item.config.option, "loadgroup", False):  # set in pytest-xdist's workers
        return
    if item.get_closest_marker("xdist_group") is None:
        return
    if item.nodeid.rfind("@") <= item.nodeid.rfind("]"):
        pytest.fail(
            "--dist loadgroup lost this test's xdist_group: this pytest and pytest-xdist "
            "do not work together (see the pytest requirement in pyproject.toml)",
            pytrace=False,
        )


@pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run if its tests left keys in the shared test Redis.

    Each test deletes its keys (its prefix's), so none of this run's may remain.
    Only keys under this run's prefixes are looked at: what other programs or
    other runs keep in the same database is theirs. With pytest-xdist the
    controller checks once every worker has finished; a worker does not.
    """
    if hasattr(session.config, "workerinput"):
        return
    try:
        client = redis.Redis.from_url(REAL_REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        with client:
            left = sorted(
                key.decode(errors="replace")
                for key in client.scan_iter(match=run_pattern(), count=1000)
            )
    except redis.RedisError:
        return  # no Redis: the tests that need one were skipped, or failed under CI
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", f"{len(left)} keys left in the test Redis", red=True)
        for key in left:
            reporter.write_line(key)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _fresh_state(settings: Any) -> Iterator[None]:
    """Each test starts with an empty fakeredis and no recorder from a previous test."""
    runtime.reset()
    connection.get_client().flushdb()
    yield
    runtime.reset()


@pytest.fixture(scope="session")
def _staff_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return staff_database(tmp_path_factory.mktemp("staff-database"))


@pytest.fixture
def example_database(_staff_database: Path, tmp_path: Path) -> Path:
    """The example project's database for this test alone: migrated, with the staff
    user of ``tests.support.example_project`` (made once per test process)."""
    return copy_database(_staff_database, tmp_path)


@pytest.fixture
def real_redis() -> Iterator[redis.Redis]:
    client = real_redis_client()
    yield client
    client.close()


@pytest.fixture
def real_prefix(real_redis: redis.Redis) -> Iterator[str]:
    """A key prefix no other test run uses; its keys are deleted afterwards."""
    prefix = new_prefix()
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
    prefix = new_prefix()
    yield RedisStore(redis_client, prefix=prefix, keep=5, ttl=600)
    delete_prefixed(redis_client, prefix)


@pytest.fixture(params=PATHS)
def tile_client(request: pytest.FixtureRequest, settings: Any) -> Any:
    """Make test clients for one way of serving tiles: Django, the fast path's middleware
    or its WSGI wrapper; every test using it runs on all three."""

    def make(**kwargs: Any) -> Any:
        return make_client(request.param, settings, **kwargs)

    return make


@pytest.fixture
def staff(django_user_model: Any) -> Client:
    """A test client signed in as a staff user (who may see the status page)."""
    client = Client()
    user: AbstractBaseUser = django_user_model.objects.create_user("staff", is_staff=True)
    client.force_login(user)
    return client
