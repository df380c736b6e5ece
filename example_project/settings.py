"""Settings for the example project: a demo of django_tilestatus, not a production setup.

Environment:
- ``TILESTATUS_REDIS_URL``: the Redis to record into. Without it an in-process
  fakeredis store stands in (one process only), and the log says so.
- ``TILESTATUS_ENABLED=0``: serve tiles without recording, to compare.
- ``TILESTATUS_KEY_PREFIX``: the Redis key prefix (default ``tilestatus``).
- ``TILESTATUS_HOST``: the host name to report under (default: the machine's).
- ``TILESTATUS_BUSY_AFTER``: seconds after which a request is slow and its stack
  is taken (default 10; the in-flight end-to-end tests set 1).
- ``TILESTATUS_CONFIG``: the path of a TileStache config file to serve instead of
  the demo's ``tilestache.cfg`` (the reliability tests serve a slow layer and a
  tile cache of their own with it).
- ``DJANGO_DEBUG=0``: turn DEBUG off.
- ``DJANGO_SQLITE_PATH``: the SQLite database file (default ``var/db.sqlite3``),
  so a test can run the example against a database of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

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
if REDIS_URL:
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
    "CONFIG": os.environ.get("TILESTATUS_CONFIG") or BASE_DIR / "tilestache.cfg",
    "CACHE_ALIAS": "default",
    "KEY_PREFIX": os.environ.get("TILESTATUS_KEY_PREFIX", "tilestatus"),
    "ENABLED": os.environ.get("TILESTATUS_ENABLED", "1") != "0",
    "HOST": os.environ.get("TILESTATUS_HOST") or None,
    "BUSY_AFTER": float(os.environ.get("TILESTATUS_BUSY_AFTER") or 10),
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
