"""Settings for the example project: a demo of django_tilestatus, not a production setup.

Environment:
- ``TILESTATUS_REDIS_URL``: the Redis to record into. Without it an in-process
  fakeredis store stands in (one process only), and the log says so.
- ``TILESTATUS_REDIS_SENTINELS``: ``host:port,host:port,...`` of Redis Sentinels;
  ``TILESTATUS_REDIS_URL`` then names the service as its host
  (``redis://mymaster/0``).
- ``TILESTATUS_REDIS_CLUSTER=1``: ``TILESTATUS_REDIS_URL`` names a node of a Redis
  Cluster; the app's own client (``REDIS_CLUSTER``) talks to it, and Django's
  cache is local memory (django-redis has no cluster client).
- ``TILESTATUS_REDIS_CLIENT``: ``cache`` (default) records through the
  django-redis cache ``default`` made from the variables above, the way most
  projects do (with Sentinel: ``SentinelClient``); ``own`` gives them to the
  app's own client instead (``REDIS_URL``, ``REDIS_SENTINELS``).
- ``TILESTATUS_ENABLED=0``: serve tiles without recording, to compare.
- ``TILESTATUS_KEY_PREFIX``: the Redis key prefix (default ``tilestatus``).
- ``TILESTATUS_FAST_PATH=0``: serve tiles through Django's middleware and URL
  resolution instead of the fast path ``wsgi.py`` wires (to compare).
- ``TILESTATUS_HOST``: the host name to report under (default: the machine's).
- ``TILESTATUS_BUSY_AFTER``: seconds after which a request is slow and its stack
  is taken (default 10; the in-flight end-to-end tests set 1).
- ``TILESTATUS_CONFIG``: the path of a TileStache config file to serve instead of
  the demo's ``tilestache.cfg`` (whose Mapnik ``world`` layer is served only
  where the ``mapnik`` extra is installed) (the reliability tests serve a slow layer and a
  tile cache of their own with it).
- ``TILESTATUS_METRICS_TOKEN``: the bearer token of the Prometheus metrics
  (``/tiles/metrics``); without it only staff sessions see them.
- ``TILESTATUS_TASK_BACKEND``: the task backend ``tilestatus_seed --enqueue`` sends
  chunks to: ``immediate`` (default: each chunk runs as it is enqueued) or ``rq``
  (RQ on ``TILESTATUS_REDIS_URL``; workers: ``scripts/seed-worker.sh``), with the
  queue ``TILESTATUS_TASK_QUEUE`` (default ``tilestatus-seed``). Needs the ``seed``
  extra; without it the example runs, and only ``--enqueue`` is refused.
- ``DJANGO_DEBUG=0``: turn DEBUG off.
- ``DJANGO_SQLITE_PATH``: the SQLite database file (default ``var/db.sqlite3``),
  so a test can run the example against a database of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from example_project.world import tilestache_config

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = BASE_DIR / "var"  # git-ignored: database and tile cache
VAR_DIR.mkdir(exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-insecure-key-do-not-deploy")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tilestatus",
    "example_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The tile fast path under ASGI, after SecurityMiddleware as docs/fast-path.md advises;
    # under WSGI, wsgi.py's FastPath answers tiles before this list is reached.
    "django_tilestatus.fastpath.FastPathMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SQLITE_PATH") or VAR_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

REDIS_URL = os.environ.get("TILESTATUS_REDIS_URL", "")
REDIS_SENTINELS = [
    (host, int(port))
    for host, _, port in (
        item.strip().rpartition(":")
        for item in os.environ.get("TILESTATUS_REDIS_SENTINELS", "").split(",")
        if item.strip()
    )
]
REDIS_CLUSTER = os.environ.get("TILESTATUS_REDIS_CLUSTER", "0") == "1"
OWN_REDIS_CLIENT = REDIS_CLUSTER or os.environ.get("TILESTATUS_REDIS_CLIENT") == "own"

if REDIS_URL and OWN_REDIS_CLIENT:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                # Bound every wait on Redis: the status page must not hang with it.
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    if REDIS_SENTINELS:
        CACHES["default"]["OPTIONS"].update(
            {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": REDIS_SENTINELS,
            }
        )
else:
    import fakeredis

    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://in-process-fakeredis:6379/0",
            "OPTIONS": {
                "CONNECTION_POOL_KWARGS": {"connection_class": fakeredis.FakeRedisConnection},
            },
        }
    }

TILESTATUS = {
    # The demo's "world" layer is left out where Mapnik is not installed (see world.py).
    "CONFIG": os.environ.get("TILESTATUS_CONFIG") or tilestache_config(BASE_DIR / "tilestache.cfg"),
    "CACHE_ALIAS": "default",
    "KEY_PREFIX": os.environ.get("TILESTATUS_KEY_PREFIX", "tilestatus"),
    "ENABLED": os.environ.get("TILESTATUS_ENABLED", "1") != "0",
    "HOST": os.environ.get("TILESTATUS_HOST") or None,
    "METRICS_TOKEN": os.environ.get("TILESTATUS_METRICS_TOKEN") or None,
    "FAST_PATH": os.environ.get("TILESTATUS_FAST_PATH", "1") != "0",
    "BUSY_AFTER": float(os.environ.get("TILESTATUS_BUSY_AFTER") or 10),
}
if REDIS_URL and OWN_REDIS_CLIENT:
    TILESTATUS.update(
        {
            "REDIS_URL": REDIS_URL,
            "REDIS_SENTINELS": REDIS_SENTINELS or None,
            "REDIS_CLUSTER": REDIS_CLUSTER,
        }
    )

# -- seeding's task backend (tilestatus_seed --enqueue) ----------------------------------
TASK_BACKEND = os.environ.get("TILESTATUS_TASK_BACKEND", "immediate")
TASK_QUEUE = os.environ.get("TILESTATUS_TASK_QUEUE", "tilestatus-seed")
try:
    import django.tasks  # noqa: F401  (Django 6.0+)

    TASKS_PACKAGE = "django.tasks"
except ImportError:
    TASKS_PACKAGE = "django_tasks"
if TASK_BACKEND == "rq":
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    if TASKS_PACKAGE == "django_tasks":
        INSTALLED_APPS += ["django_tasks"]
    RQ_QUEUES = {TASK_QUEUE: {"URL": REDIS_URL or "redis://127.0.0.1:6379/0"}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": [TASK_QUEUE]}}
else:
    TASKS = {
        "default": {
            "BACKEND": f"{TASKS_PACKAGE}.backends.immediate.ImmediateBackend",
            "QUEUES": [TASK_QUEUE],
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Django's own console handler would print each line a second time.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django_tilestatus": {"level": "INFO"},
        "example_project": {"level": "INFO"},
    },
}
