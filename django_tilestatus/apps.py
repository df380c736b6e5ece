"""App configuration: system checks, the settings-change hook, the admin index link."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.core.signals import setting_changed


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    """Forget everything built from ``TILESTATUS`` when a test overrides it."""
    if setting in ("TILESTATUS", "CACHES"):
        from . import runtime

        runtime.reset()


#: The admin index with a "Tile status" module (see ``_link_admin_index``).
ADMIN_INDEX_TEMPLATE = "django_tilestatus/admin_index.html"


def _link_admin_index() -> None:
    """Show "Tile status" on the admin index, with no model and so no migration.

    Only when the project has not set an index template of its own; such a
    project includes ``django_tilestatus/includes/admin_link.html`` instead.
    """
    if not apps.is_installed("django.contrib.admin"):
        return
    from django.contrib import admin

    if admin.site.index_template is None:
        admin.site.index_template = ADMIN_INDEX_TEMPLATE


class TileStatusConfig(AppConfig):
    name = "django_tilestatus"
    verbose_name = "Tile status"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401 - registers the checks
            runtime,
        )

        runtime.install()
        setting_changed.connect(_settings_changed, dispatch_uid="django_tilestatus.settings")
        _link_admin_index()
