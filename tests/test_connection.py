"""The app's own clients are built as configured: Sentinel, timeouts, no retries.

Building a Sentinel client connects to nothing, so these run anywhere; the
clients are exercised against real sentinels and a real cluster in
``tests/reliability/test_redis_sentinel.py`` and ``test_redis_cluster.py``.
"""

from __future__ import annotations

from typing import Any

from redis.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from django_tilestatus import conf, connection

from .support.real_redis import REAL_REDIS_URL

SENTINELS = [("sentinel-1", 26379), ("sentinel-2", 26380)]


def test_redis_url_gets_short_timeouts_and_no_retries(settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "REDIS_URL": "redis://127.0.0.1:6390/3"}
    kwargs = connection.client_for(conf.get_config()).connection_pool.connection_kwargs
    assert (kwargs["db"], kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (
        3,
        connection.SOCKET_TIMEOUT,
        connection.SOCKET_TIMEOUT,
    )
    assert kwargs["retry"].get_retries() == 0


def test_sentinels_name_the_service_and_the_url_configures_the_master(settings: Any) -> None:
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "REDIS_URL": "rediss://:master-secret@mymaster/2",
        "REDIS_SENTINELS": SENTINELS,
        "REDIS_SENTINEL_KWARGS": {"password": "sentinel-secret"},
    }
    client = connection.client_for(conf.get_config())
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.is_master) == ("mymaster", True)
    assert pool.connection_class is SentinelManagedSSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"], kwargs["socket_timeout"]) == (
        "master-secret",
        2,
        connection.SOCKET_TIMEOUT,
    )
    assert kwargs["retry"].get_retries() == 0
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    for sentinel in sentinels:
        options = sentinel.connection_pool.connection_kwargs
        assert options["password"] == "sentinel-secret"
        assert options["socket_timeout"] == connection.SOCKET_TIMEOUT


def test_get_client_is_built_once_per_settings(settings: Any) -> None:
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "REDIS_URL": "redis://mymaster/0",
        "REDIS_SENTINELS": SENTINELS,
    }
    client = connection.get_client()
    assert connection.get_client() is client
    assert isinstance(client.connection_pool, SentinelConnectionPool)


def test_new_settings_close_the_apps_own_client_but_never_a_caches(
    settings: Any, real_redis: Any
) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "REDIS_URL": REAL_REDIS_URL}
    own = connection.get_client()
    assert own.ping()
    [connected] = own.connection_pool._available_connections
    assert connected.is_connected
    settings.TILESTATUS = {**settings.TILESTATUS, "REDIS_URL": ""}  # a cache's client now
    assert not connected.is_connected  # closed, not left to the garbage collector
    cache_client = connection.get_client()
    assert cache_client.ping()
    # The cache's pool is the process's: earlier tests may have left more connections in it.
    cache_connections = list(cache_client.connection_pool._available_connections)
    assert cache_connections
    settings.TILESTATUS = {**settings.TILESTATUS, "REDIS_URL": REAL_REDIS_URL}
    assert all(each.is_connected for each in cache_connections)  # none closed by the switch
    assert cache_client.ping()
