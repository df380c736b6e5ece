"""The example project as an app, so its templates load and it says where it records.

It also says, once per process, when the Mapnik-rendered ``world`` layer is left out.
"""

import logging

from django.apps import AppConfig
from django.conf import settings

from .world import LAYER, mapnik_missing

logger = logging.getLogger("example_project")


class ExampleProjectConfig(AppConfig):
    name = "example_project"
    verbose_name = "django_tilestatus example"

    def ready(self) -> None:
        reason = mapnik_missing()
        if reason is not None:
            logger.warning(
                "Mapnik is not available, so the demo has no %r layer: %s", LAYER, reason
            )


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
