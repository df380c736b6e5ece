"""System checks for the ``TILESTATUS`` setting, so mistakes show at ``manage.py check``.

Ids are stable and listed in the README. The checks do not contact Redis;
they do build the TileStache configuration, which imports its providers.
"""

from __future__ import annotations

import numbers
import urllib.parse
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from . import conf
from .tilestache import ConfigError, build_configuration

REDIS_SCHEMES = ("redis", "rediss", "unix")


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every ``TILESTATUS`` mistake we can see without contacting Redis."""
    raw = getattr(settings, "TILESTATUS", None)
    if raw is not None and not isinstance(raw, dict):
        return [
            Error(
                "TILESTATUS must be a dict.",
                hint="Set TILESTATUS = {'CONFIG': BASE_DIR / 'tilestache.cfg'}.",
                id="tilestatus.E007",
            )
        ]
    values = conf.merged()
    messages: list[CheckMessage] = []
    messages += _check_unknown_keys(conf.user_settings())
    messages += _check_tilestache_config(values["CONFIG"])
    messages += _check_redis(values)
    messages += _check_numbers(values)
    messages += _check_types(values)
    return messages


def _check_unknown_keys(user: dict[str, Any]) -> list[CheckMessage]:
    unknown = sorted(set(user) - set(conf.DEFAULTS))
    if not unknown:
        return []
    return [
        Warning(
            f"TILESTATUS has unknown keys: {', '.join(map(str, unknown))}.",
            hint=f"Known keys are {', '.join(conf.DEFAULTS)}; check the spelling.",
            id="tilestatus.W001",
        )
    ]


def _check_tilestache_config(source: Any) -> list[CheckMessage]:
    if source is None or source == "":
        return [
            Error(
                "TILESTATUS['CONFIG'] is not set.",
                hint="Point it at a TileStache JSON config file, or give the config as a dict.",
                id="tilestatus.E001",
            )
        ]
    try:
        build_configuration(source)
    except ConfigError as exc:
        return [
            Error(
                f"The TileStache config in TILESTATUS['CONFIG'] cannot be loaded: {exc}",
                hint=exc.hint,
                id="tilestatus.E002",
            )
        ]
    return []


def _check_redis(values: dict[str, Any]) -> list[CheckMessage]:
    url = values["REDIS_URL"]
    if url:
        scheme = urllib.parse.urlsplit(url).scheme if isinstance(url, str) else ""
        if scheme not in REDIS_SCHEMES:
            return [
                Error(
                    "TILESTATUS['REDIS_URL'] is not a Redis URL.",
                    hint="Use redis://host:port/db, rediss://... or unix:///path, or None "
                    "to use the CACHE_ALIAS cache's client.",
                    id="tilestatus.E006",
                )
            ]
        return []
    alias = values["CACHE_ALIAS"]
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [
            Error(
                f"TILESTATUS['CACHE_ALIAS'] names {alias!r}, which is not in CACHES.",
                hint="Name a django-redis cache from CACHES, or set TILESTATUS['REDIS_URL'].",
                id="tilestatus.E003",
            )
        ]
    backend = str(caches[alias].get("BACKEND", ""))
    if not backend.startswith("django_redis."):
        return [
            Error(
                f"The cache {alias!r} is not a django-redis cache ({backend or 'no BACKEND'}).",
                hint="Use BACKEND 'django_redis.cache.RedisCache' for it, name another cache "
                "in CACHE_ALIAS, or set TILESTATUS['REDIS_URL'].",
                id="tilestatus.E004",
            )
        ]
    return []


def _check_numbers(values: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in conf.POSITIVE_KEYS:
        value = values[key]
        whole = key in conf.INTEGER_KEYS
        kind = numbers.Integral if whole else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
            messages.append(
                Error(
                    f"TILESTATUS[{key!r}] must be a positive {'whole ' if whole else ''}"
                    f"number, not {value!r}.",
                    hint=f"The default is {conf.DEFAULTS[key]!r}.",
                    id="tilestatus.E005",
                )
            )
    return messages


def _check_types(values: dict[str, Any]) -> list[CheckMessage]:
    problems = []
    if not isinstance(values["KEY_PREFIX"], str) or not values["KEY_PREFIX"]:
        problems.append(("KEY_PREFIX", "a non-empty string"))
    if values["HOST"] is not None and (not isinstance(values["HOST"], str) or not values["HOST"]):
        problems.append(("HOST", "a non-empty string or None"))
    if not isinstance(values["ENABLED"], bool):
        problems.append(("ENABLED", "True or False"))
    if not isinstance(values["CACHE_ALIAS"], str):
        problems.append(("CACHE_ALIAS", "a cache alias (a string)"))
    return [
        Error(
            f"TILESTATUS[{key!r}] must be {expected}, not {values[key]!r}.",
            hint=f"The default is {conf.DEFAULTS[key]!r}.",
            id="tilestatus.E007",
        )
        for key, expected in problems
    ]
