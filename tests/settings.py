"""Settings for the test suite: recording goes to an in-process fakeredis by default."""

import atexit
import shutil
import tempfile
from pathlib import Path

import fakeredis

TESTS_DIR = Path(__file__).resolve().parent
TILE_CACHE_DIR = tempfile.mkdtemp(prefix="tilestatus-tests-")
atexit.register(shutil.rmtree, TILE_CACHE_DIR, ignore_errors=True)

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tilestatus",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
STATIC_URL = "static/"

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "fake": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://tilestatus-tests:6379/0",
        "OPTIONS": {"CONNECTION_POOL_KWARGS": {"connection_class": fakeredis.FakeRedisConnection}},
    },
}

#: The TileStache config the tests serve (see tests/providers.py).
TILESTACHE_CONFIG = {
    "cache": {"name": "Disk", "path": TILE_CACHE_DIR, "umask": "0022"},
    "layers": {
        "solid": {
            "provider": {"class": "tests.providers:Solid"},
            "allowed origin": "*",
            "maximum cache age": 300,
            "redirects": {"jpeg": "png"},
        },
        "cold": {"provider": {"class": "tests.providers:Solid"}},  # tests/support/cold.py
        "nocache": {
            "provider": {"class": "tests.providers:Solid", "kwargs": {"color": "#cc3333"}},
            "write cache": False,
        },
        "points": {"provider": {"class": "tests.providers:Points"}},
        "broken": {"provider": {"class": "tests.providers:Broken"}, "write cache": False},
        "upstream": {"provider": {"class": "tests.providers:Upstream"}, "write cache": False},
        "hang": {
            "provider": {"class": "tests.providers:Hang", "kwargs": {"seconds": 60}},
            "write cache": False,
        },
        "exit": {"provider": {"class": "tests.providers:Abort"}, "write cache": False},
        "interrupt": {
            "provider": {
                "class": "tests.providers:Abort",
                "kwargs": {"exception": "KeyboardInterrupt"},
            },
            "write cache": False,
        },
    },
}

TILESTATUS = {
    "CONFIG": TILESTACHE_CONFIG,
    "CACHE_ALIAS": "fake",
    "KEY_PREFIX": "tilestatus-tests",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"]},
}
