"""Settings for the benchmark's own process, which times reads of the status log
in-process: the benchmarked settings with a throw-away database for the staff user."""

from .settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
