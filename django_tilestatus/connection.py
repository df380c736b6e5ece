"""The Redis client the app uses: its own from ``REDIS_URL``, or a django-redis cache's.

The app's own client talks to one server, to the master that Redis Sentinel
names (``REDIS_SENTINELS``), or to a Redis Cluster (``REDIS_CLUSTER``). One
client per process, built on first use and reused, so recording never opens a
connection per request; redis-py's pools notice a fork by themselves.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from . import conf

#: Seconds the app's own client waits to connect or for a reply. A hung
#: Redis must not hold the writer thread or the status page for long.
SOCKET_TIMEOUT = 0.5

_lock = threading.Lock()
_client: Any = None
#: Whether ``_client`` is the app's own (from ``REDIS_URL``), which ``reset`` closes; a
#: django-redis cache's client belongs to the cache.
_own_client = False


def _own_options() -> dict[str, Any]:
    """Short timeouts and redis-py's retries off, for every client of the app's own.

    Retrying a dead server only lengthens the outage as seen by a reader;
    the writer retries on its own schedule.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
    }


def client_from_url(url: str, **options: Any) -> Any:
    """A client for the server at ``url``; ``options`` go to redis-py as they are."""
    import redis

    return redis.Redis.from_url(url, **{**_own_options(), **options})


def cluster_client_from_url(url: str, **options: Any) -> Any:
    """A ``RedisCluster`` client that finds the whole cluster from the node at ``url``.

    It connects on creation, to learn which node serves which slot. Every key
    of the app carries one hash tag (see ``storage/redis_store.py``), so each pipeline of
    the app goes to one node in one round trip.
    """
    from redis.cluster import RedisCluster

    return RedisCluster.from_url(url, **{**_own_options(), **options})


def client_from_sentinels(
    url: str,
    sentinels: Sequence[tuple[str, int]],
    sentinel_kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """A client for the master that the sentinels name, following it through failovers.

    ``url`` is written as for django-redis's Sentinel client: its host is
    the service name (``redis://mymaster/0``), and its password, database
    and scheme apply to the master. Each new connection asks the sentinels
    where the master is, so after a failover the next write reaches the
    promoted replica by itself.
    """
    from redis.connection import parse_url
    from redis.sentinel import Sentinel

    params: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call, unused-ignore]
    service = params.pop("host")
    params.pop("port", None)
    # rediss:// gives an SSL connection class; the sentinel pool picks its own from ``ssl``.
    if params.pop("connection_class", None) is not None:
        params["ssl"] = True
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
        [(host, int(port)) for host, port in sentinels],
        sentinel_kwargs={**_own_options(), **(sentinel_kwargs or {})},
    )
    master_options = {**_own_options(), **params, **options}
    return sentinel.master_for(service, **master_options)  # type: ignore[no-untyped-call, unused-ignore]


def database_of(url: str) -> int | None:
    """The database a Redis URL selects (0 when it names none), or None for no Redis URL."""
    from redis.connection import parse_url

    try:
        return int(parse_url(url).get("db", 0))  # type: ignore[no-untyped-call, unused-ignore]
    except ValueError:
        return None


def client_from_cache(alias: str) -> Any:
    """The raw redis-py client behind a django-redis cache, pool included."""
    from django_redis import get_redis_connection

    return get_redis_connection(alias)


def client_for(config: conf.Config, **options: Any) -> Any:
    """A new client for ``config``; ``options`` go to redis-py (not to a cache's client)."""
    url = config.redis_url
    if not url:
        return client_from_cache(config.cache_alias)
    if config.redis_cluster:
        return cluster_client_from_url(url, **options)
    if config.redis_sentinels:
        return client_from_sentinels(
            url, config.redis_sentinels, config.redis_sentinel_kwargs, **options
        )
    return client_from_url(url, **options)


def get_client() -> Any:
    """The process's Redis client for the settings in force."""
    global _client, _own_client
    if _client is None:
        with _lock:
            if _client is None:
                config = conf.get_config()
                _client = client_for(config)
                _own_client = bool(config.redis_url)
    return _client


def reset() -> None:
    """Forget the client (settings changed); the next use builds a new one.

    The app's own client is closed first: left to the garbage collector, its
    connections' sockets may be collected before the connections close them.
    """
    global _client, _own_client
    with _lock:
        client, own = _client, _own_client
        _client, _own_client = None, False
    if client is not None and own:
        # Closing is tidiness: the client is forgotten whatever happens.
        with contextlib.suppress(Exception):
            client.close()
