"""The example project as an app, so its templates load and it can say where it records."""

import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("example_project")


class ExampleProjectConfig(AppConfig):
    name = "example_project"
    verbose_name = "django_tilestatus example"


def say_where_recording_goes() -> None:
    """Warn that recording stays inside this process when no Redis URL is set.

    Called where a process starts serving (``wsgi.py``), not in ``ready()``:
    ``migrate``, ``shell`` and runserver's autoreloader parent set Django up too,
    and would print the notice once each although they serve nothing.
    """
    if not settings.REDIS_URL:
        logger.warning(
            "TILESTATUS_REDIS_URL is not set: recording into an in-process fakeredis "
            "store that only this process can see. Set it to a redis:// URL to run "
            "several workers."
        )
