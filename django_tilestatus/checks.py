"""System checks for the ``TILESTATUS`` setting, so mistakes show at ``manage.py check``.

Ids are stable and listed in the README. The checks do not contact Redis;
they do build the TileStache configuration, which imports its providers.
"""

from __future__ import annotations

import numbers
import os
import shlex
import urllib.parse
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from . import conf, connection
from .storage import RedisStore
from .tilestache import ConfigError, build_configuration, read_config_source

REDIS_SCHEMES = ("redis", "rediss", "unix")
#: django-redis's Sentinel pieces, which only work together.
SENTINEL_CLIENT = "django_redis.client.SentinelClient"
SENTINEL_FACTORY = "django_redis.pool.SentinelConnectionFactory"
#: Paths under the include that are not tiles, so no layer may take their names.
RESERVED_LAYER_NAMES = ("status", "metrics")
#: The gunicorn options of ``GUNICORN_CMD_ARGS`` that decide whether its ``--timeout``
#: ends a request, by the setting each names.
GUNICORN_OPTIONS = {
    "-t": "timeout",
    "--timeout": "timeout",
    "-k": "worker_class",
    "--worker-class": "worker_class",
    "--threads": "threads",
}
#: Worker classes whose requests gunicorn's ``--timeout`` ends: a sync worker is silent
#: while it serves a request (the others keep telling the master they are alive).
GUNICORN_SYNC_WORKERS = ("sync", "gunicorn.workers.sync.SyncWorker")


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
    messages += _check_sentinel(values)
    messages += _check_cluster(values)
    messages += _check_numbers(values)
    messages += _check_types(values)
    messages += _check_metrics_token(values["METRICS_TOKEN"])
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
        configuration = build_configuration(source)
    except ConfigError as exc:
        return [
            Error(
                f"The TileStache config in TILESTATUS['CONFIG'] cannot be loaded: {exc}",
                hint=exc.hint,
                id="tilestatus.E002",
            )
        ]
    reserved = sorted(set(RESERVED_LAYER_NAMES) & set(configuration.layers))
    if reserved:
        return [
            Error(
                f"The TileStache config names a layer {', '.join(map(repr, reserved))}, "
                "a path the app answers itself.",
                hint="Rename the layer: 'status/' is the status page and 'metrics' the "
                "Prometheus metrics under the same include.",
                id="tilestatus.E009",
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
    return _check_sentinel_cache(alias, caches[alias])


def _sentinel_error(problem: str, hint: str) -> Error:
    return Error(problem, hint=hint, id="tilestatus.E020")


def _is_pair(item: Any) -> bool:
    return (
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[0], str)
        and bool(item[0])
        and isinstance(item[1], int)
        and not isinstance(item[1], bool)
        and 0 < item[1] < 65536
    )


def _check_sentinel(values: dict[str, Any]) -> list[CheckMessage]:
    """``REDIS_SENTINELS``: a list of sentinels, with ``REDIS_URL`` naming the service."""
    sentinels = values["REDIS_SENTINELS"]
    if sentinels is None:
        return []
    example = "[('sentinel-1', 26379), ('sentinel-2', 26379), ('sentinel-3', 26379)]"
    if (
        not isinstance(sentinels, (list, tuple))
        or not sentinels
        or not all(map(_is_pair, sentinels))
    ):
        return [
            _sentinel_error(
                f"TILESTATUS['REDIS_SENTINELS'] must be a list of (host, port) pairs, "
                f"not {sentinels!r}.",
                hint=f"For example {example}, or None without Sentinel.",
            )
        ]
    url = values["REDIS_URL"]
    if not url:
        return [
            _sentinel_error(
                "TILESTATUS['REDIS_SENTINELS'] is set but REDIS_URL is not, so it is ignored.",
                hint="Name the service in REDIS_URL, e.g. 'redis://mymaster/0', or configure "
                "Sentinel in the CACHE_ALIAS cache (django-redis's SentinelClient) instead.",
            )
        ]
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return [
            _sentinel_error(
                "With REDIS_SENTINELS, TILESTATUS['REDIS_URL'] must name the Sentinel service "
                "as its host.",
                hint="For example 'redis://mymaster/0' or 'rediss://:password@mymaster/0'.",
            )
        ]
    return []


def _check_sentinel_cache(alias: str, cache: dict[str, Any]) -> list[CheckMessage]:
    """django-redis's SentinelClient fails on first use without its connection factory."""
    options = cache.get("OPTIONS") or {}
    if str(options.get("CLIENT_CLASS", "")) != SENTINEL_CLIENT:
        return []
    factory = options.get("CONNECTION_FACTORY") or getattr(
        settings, "DJANGO_REDIS_CONNECTION_FACTORY", ""
    )
    if str(factory) != SENTINEL_FACTORY or not options.get("SENTINELS"):
        return [
            _sentinel_error(
                f"The cache {alias!r} uses django-redis's SentinelClient without "
                "SentinelConnectionFactory and SENTINELS, so it cannot connect.",
                hint=f"Add 'CONNECTION_FACTORY': {SENTINEL_FACTORY!r} and 'SENTINELS': "
                "[(host, port), ...] to its OPTIONS.",
            )
        ]
    return []


def _cluster_problem(values: dict[str, Any]) -> tuple[str, str] | None:
    """Why ``REDIS_CLUSTER`` cannot work with the other settings, and what to do."""
    url = values["REDIS_URL"]
    if not url:
        return (
            "TILESTATUS['REDIS_CLUSTER'] needs REDIS_URL: django-redis has no cluster client.",
            "Set REDIS_URL to the URL of one node of the cluster, e.g. "
            "'redis://redis-cluster.internal:6379'.",
        )
    if values["REDIS_SENTINELS"]:
        return (
            "TILESTATUS['REDIS_CLUSTER'] and REDIS_SENTINELS are both set.",
            "A Redis Cluster fails over by itself: remove REDIS_SENTINELS.",
        )
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme == "unix":
        return (
            "A Redis Cluster cannot be reached through a unix:// socket.",
            "Use a redis:// or rediss:// URL naming one node of the cluster.",
        )
    database = connection.database_of(url)
    if database is None:
        return None  # not a Redis URL: tilestatus.E006 says so
    if database != 0:
        return (
            f"TILESTATUS['REDIS_URL'] selects database {database}; a Redis Cluster has "
            "only database 0.",
            "Drop the database from the URL, and give the site its own KEY_PREFIX instead.",
        )
    prefix = values["KEY_PREFIX"]
    if isinstance(prefix, str) and prefix and not RedisStore(None, prefix).keys_share_one_slot():
        return (
            f"With TILESTATUS['KEY_PREFIX'] {values['KEY_PREFIX']!r} the app's keys would "
            "not share one cluster hash slot.",
            "Remove '{' and '}' from KEY_PREFIX: the app adds the hash tag itself.",
        )
    return None


def _check_cluster(values: dict[str, Any]) -> list[CheckMessage]:
    if values["REDIS_CLUSTER"] is not True:
        return []
    problem = _cluster_problem(values)
    if problem is None:
        return []
    return [Error(problem[0], hint=problem[1], id="tilestatus.E021")]


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
    if not isinstance(values["FAST_PATH"], bool):
        problems.append(("FAST_PATH", "True or False"))
    if not isinstance(values["CACHE_ALIAS"], str):
        problems.append(("CACHE_ALIAS", "a cache alias (a string)"))
    if not isinstance(values["REDIS_CLUSTER"], bool):
        problems.append(("REDIS_CLUSTER", "True or False"))
    if not isinstance(values["REDIS_SENTINEL_KWARGS"], (dict, type(None))):
        problems.append(("REDIS_SENTINEL_KWARGS", "a dict of redis-py options or None"))
    return [
        Error(
            f"TILESTATUS[{key!r}] must be {expected}, not {values[key]!r}.",
            hint=f"The default is {conf.DEFAULTS[key]!r}.",
            id="tilestatus.E007",
        )
        for key, expected in problems
    ]


def _check_metrics_token(token: Any) -> list[CheckMessage]:
    if token is None:
        return []
    if not isinstance(token, str) or len(token) < conf.MIN_TOKEN_LENGTH or token != token.strip():
        return [
            Error(
                "TILESTATUS['METRICS_TOKEN'] must be None or a string of at least "
                f"{conf.MIN_TOKEN_LENGTH} characters without surrounding spaces.",
                hint="Make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                id="tilestatus.E008",
            )
        ]
    return []


#: The fast path's middleware, as listed in ``MIDDLEWARE``.
FAST_PATH_MIDDLEWARE = "django_tilestatus.fastpath.FastPathMiddleware"


@register(Tags.urls)
def check_fast_path(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The fast path can find the tile URLs, and answers only what Django gives the tile view.

    The WSGI wrapper cannot be seen from here (wsgi.py is not imported by
    ``manage.py``), so a URLconf without the tile URLs is an error only when the
    middleware is listed; the wrapper logs the same reason at its first request.
    """
    from .web.fastpath import TileRoutes

    if conf.merged()["FAST_PATH"] is not True:
        return []
    listed = FAST_PATH_MIDDLEWARE in getattr(settings, "MIDDLEWARE", [])
    try:
        routes = TileRoutes.from_urlconf()
    except ImproperlyConfigured as exc:
        if not listed:
            return []
        return [
            Error(
                f"The tile fast path is wired but cannot serve: {exc}",
                hint="Include django_tilestatus.urls once, e.g. path('tiles/', "
                "include('django_tilestatus.urls')), or remove FastPathMiddleware.",
                id="tilestatus.E010",
            )
        ]
    probes = [f"{name}/0/0/0.png" for name in _layer_names()] + ["status/", "status", "metrics"]
    shadowed = [routes.prefix + p for p in probes if routes.resolves_elsewhere(p)]
    if not shadowed:
        return []
    return [
        Warning(
            f"Paths under the tile URLs go to another view: {', '.join(shadowed)}. The tile "
            "fast path would answer them as tiles.",
            hint="Route nothing of your own under the tile URLs' prefix, or set "
            "TILESTATUS['FAST_PATH'] = False.",
            id="tilestatus.W002",
        )
    ]


#: Middleware a public tile answer does not miss when the fast path skips it: the fast
#: path applies their rules itself (``web.site_rules``), or they serve only sessions,
#: users, forms and messages, which a tile uses none of.
NOT_MISSED_BY_TILES = {
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
}


@register()
def check_skipped_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Name the middleware that tile requests skip when ``FastPathMiddleware`` precedes them.

    A login, logging or rate-limiting middleware of the project's own listed after it
    would silently not see tiles. (The ``FastPath`` WSGI wrapper, which skips them all,
    cannot be seen from here; docs/fast-path.md says so.)
    """
    if conf.merged()["FAST_PATH"] is not True:
        return []
    middleware = [str(name) for name in getattr(settings, "MIDDLEWARE", None) or ()]
    if FAST_PATH_MIDDLEWARE not in middleware:
        return []
    after = middleware[middleware.index(FAST_PATH_MIDDLEWARE) + 1 :]
    skipped = [name for name in after if name not in NOT_MISSED_BY_TILES]
    if not skipped:
        return []
    return [
        Warning(
            f"Tile requests skip these middleware, listed after FastPathMiddleware: "
            f"{', '.join(skipped)}.",
            hint="List FastPathMiddleware after every middleware that must see tiles, or "
            "set TILESTATUS['FAST_PATH'] = False.",
            id="tilestatus.W003",
        )
    ]


def _layer_names() -> list[str]:
    """The layers named in ``CONFIG`` (without building it: ``check_settings`` does)."""
    try:
        layers = read_config_source(conf.merged()["CONFIG"])[0].get("layers")
    except (ConfigError, TypeError, ValueError, AttributeError):
        return []
    return sorted(str(name) for name in layers) if isinstance(layers, dict) else []


@register()
def check_gunicorn_timeout(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """No stack snapshot is ever taken when gunicorn kills a request before ``BUSY_AFTER``.

    The timeout is known only when ``GUNICORN_CMD_ARGS`` gives it (not from gunicorn's
    command line or config file), and it ends a request only in sync workers.
    """
    busy_after = conf.merged()["BUSY_AFTER"]
    if isinstance(busy_after, bool) or not isinstance(busy_after, numbers.Real):
        return []  # tilestatus.E005 says so
    timeout = _gunicorn_request_timeout(os.environ.get("GUNICORN_CMD_ARGS", ""))
    if timeout is None or busy_after < timeout:
        return []
    return [
        Warning(
            f"Stack snapshots are taken after BUSY_AFTER seconds ({busy_after}), but gunicorn "
            f"kills a request after {timeout} (--timeout in GUNICORN_CMD_ARGS), so none is "
            "ever taken.",
            hint=f"Set TILESTATUS['BUSY_AFTER'] below {timeout} (e.g. {timeout / 2:g}), or "
            "raise gunicorn's --timeout above BUSY_AFTER.",
            id="tilestatus.W004",
        )
    ]


def _gunicorn_request_timeout(args: str) -> int | None:
    """The seconds after which gunicorn kills a request, when ``args`` tells them.

    ``args`` is ``GUNICORN_CMD_ARGS``: ``--timeout N``, ``--timeout=N``, ``-t N`` or
    ``-tN`` (the last one counts, as in gunicorn). ``None`` without a timeout, with
    ``0`` (no timeout), or with a worker class other than sync (``-k``, or
    ``--threads`` above 1, which makes gunicorn use gthread).
    """
    try:
        tokens = shlex.split(args)
    except ValueError:
        return None
    found: dict[str, str] = {}
    for index, token in enumerate(tokens):
        name, equals, value = token.partition("=")
        if name.startswith("--") and equals and name in GUNICORN_OPTIONS:
            found[GUNICORN_OPTIONS[name]] = value
        elif token in GUNICORN_OPTIONS and index + 1 < len(tokens):
            found[GUNICORN_OPTIONS[token]] = tokens[index + 1]
        elif token[:2] in ("-t", "-k") and len(token) > 2:
            found[GUNICORN_OPTIONS[token[:2]]] = token[2:]
    if found.get("worker_class", "sync") not in GUNICORN_SYNC_WORKERS:
        return None
    if _whole_number(found.get("threads", "1"), default=1) > 1:
        return None
    timeout = _whole_number(found.get("timeout", ""), default=0)
    return timeout if timeout > 0 else None


def _whole_number(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default
