"""App configuration: registers the system checks and the settings-change hook."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    """Forget everything built from ``TILESTATUS`` when a test overrides it."""
    if setting in ("TILESTATUS", "CACHES"):
        from . import conf, connection, recorder, tiles

        recorder.discard_recorder(flush=False)
        connection.reset()
        tiles.reset()
        conf.reset()


class TileStatusConfig(AppConfig):
    name = "django_tilestatus"
    verbose_name = "Tile status"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the checks

        setting_changed.connect(_settings_changed, dispatch_uid="django_tilestatus.settings")
