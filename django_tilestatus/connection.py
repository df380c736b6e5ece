"""The Redis client the app uses: its own from ``REDIS_URL``, or a django-redis cache's.

One client per process, built on first use and reused, so recording never
opens a connection per request; redis-py's pool notices a fork by itself.
"""

from __future__ import annotations

import threading
from typing import Any

from . import conf

#: Seconds the app's own client waits to connect or for a reply. A hung
#: Redis must not hold the writer thread or the status page for long.
SOCKET_TIMEOUT = 0.5

_lock = threading.Lock()
_client: Any = None


def client_from_url(url: str) -> Any:
    """A client for ``url`` with short timeouts and redis-py's retries off.

    Retrying a dead server only lengthens the outage as seen by a reader;
    the writer retries on its own schedule.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def client_from_cache(alias: str) -> Any:
    """The raw redis-py client behind a django-redis cache, pool included."""
    from django_redis import get_redis_connection

    return get_redis_connection(alias)


def get_client() -> Any:
    """The process's Redis client for the settings in force."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                config = conf.get_config()
                if config.redis_url:
                    _client = client_from_url(config.redis_url)
                else:
                    _client = client_from_cache(config.cache_alias)
    return _client


def reset() -> None:
    """Forget the client (settings changed); the next use builds a new one."""
    global _client
    _client = None
