"""The ``TILESTATUS`` settings dict, merged over defaults and cached.

The cache is cleared when Django's ``setting_changed`` fires, so
``override_settings(TILESTATUS=...)`` works in tests. The user's dict is never
mutated.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "CONFIG": None,
    "CACHE_ALIAS": "default",
    "REDIS_URL": None,
    "REDIS_SENTINELS": None,
    "REDIS_SENTINEL_KWARGS": None,
    "REDIS_CLUSTER": False,
    "KEY_PREFIX": "tilestatus",
    "KEEP": 20,
    "TTL": 3600,
    "HIDE_AFTER": 600,
    "PURGE_AFTER": 21600,
    "MESSAGES": 250,
    "BUSY_AFTER": 10,
    "HOST": None,
    "ENABLED": True,
    "METRICS_TOKEN": None,
    "FAST_PATH": True,
}

#: Fewest characters a ``METRICS_TOKEN`` may have (checked by ``tilestatus.E008``).
MIN_TOKEN_LENGTH = 32

#: Keys whose value must be a positive number (checked by ``tilestatus.E005``).
POSITIVE_KEYS = ("KEEP", "TTL", "HIDE_AFTER", "PURGE_AFTER", "MESSAGES", "BUSY_AFTER")
#: Of those, the ones that count things and so must be whole numbers.
INTEGER_KEYS = ("KEEP", "MESSAGES")


@dataclass(frozen=True)
class Config:
    """The merged settings, as attributes so the request path reads them cheaply."""

    config: Any
    cache_alias: str
    redis_url: str | None
    #: ``(host, port)`` of each sentinel; REDIS_URL then names the service.
    redis_sentinels: tuple[tuple[str, int], ...] | None
    redis_sentinel_kwargs: dict[str, Any] | None
    #: REDIS_URL names a node of a Redis Cluster.
    redis_cluster: bool
    key_prefix: str
    keep: int
    ttl: float
    hide_after: float
    purge_after: float
    messages: int
    busy_after: float
    host: str
    enabled: bool
    fast_path: bool
    #: The bearer token the metrics endpoint takes besides a staff session (None: staff only).
    metrics_token: str | None = None


_cached: Config | None = None


def user_settings() -> dict[str, Any]:
    """The project's ``TILESTATUS`` dict as written (empty when unset)."""
    value = getattr(settings, "TILESTATUS", None)
    return value if isinstance(value, dict) else {}


def merged() -> dict[str, Any]:
    """Defaults overlaid with the project's keys, unknown keys included."""
    return {**DEFAULTS, **user_settings()}


def get_config() -> Config:
    """The settings in force, built once until settings change.

    Values are taken as written; ``manage.py check`` reports wrong ones
    (see ``checks.py``) rather than this function raising on every request.
    """
    global _cached
    if _cached is None:
        raw = merged()
        _cached = Config(
            config=raw["CONFIG"],
            cache_alias=raw["CACHE_ALIAS"],
            redis_url=raw["REDIS_URL"] or None,
            redis_sentinels=_pairs(raw["REDIS_SENTINELS"]),
            redis_sentinel_kwargs=raw["REDIS_SENTINEL_KWARGS"] or None,
            redis_cluster=bool(raw["REDIS_CLUSTER"]),
            key_prefix=str(raw["KEY_PREFIX"]),
            keep=raw["KEEP"],
            ttl=raw["TTL"],
            hide_after=raw["HIDE_AFTER"],
            purge_after=raw["PURGE_AFTER"],
            messages=raw["MESSAGES"],
            busy_after=raw["BUSY_AFTER"],
            host=str(raw["HOST"] or socket.gethostname()),
            enabled=bool(raw["ENABLED"]),
            fast_path=bool(raw["FAST_PATH"]),
            metrics_token=_usable_token(raw["METRICS_TOKEN"]),
        )
    return _cached


def _pairs(sentinels: Any) -> tuple[tuple[str, int], ...] | None:
    """``REDIS_SENTINELS`` as ``(host, port)`` tuples, or None when unset.

    A malformed value is reported by ``tilestatus.E020``; until it is fixed,
    it counts as unset rather than raising on every request.
    """
    if not sentinels:
        return None
    try:
        return tuple((str(host), int(port)) for host, port in sentinels)
    except (TypeError, ValueError):
        return None


def _usable_token(token: Any) -> str | None:
    """The metrics token, or None (staff only) for one the checks refuse (E008)."""
    if isinstance(token, str) and len(token) >= MIN_TOKEN_LENGTH and token == token.strip():
        return token
    return None


def reset() -> None:
    """Forget the cached settings; the next ``get_config()`` reads them again."""
    global _cached
    _cached = None
