"""The demo's Mapnik-rendered ``world`` layer, served only where Mapnik imports.

Mapnik comes from the optional ``mapnik`` extra, whose wheels exist for some
platforms only. Without it the demo serves its TileStache config minus the
``world`` layer, so it still starts, and the app config logs why once.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

LAYER = "world"


@functools.cache
def mapnik_missing() -> str | None:
    """Why Mapnik cannot be used here, or ``None`` when it imports."""
    try:
        import mapnik  # noqa: F401
    except ImportError as exc:
        return f"{exc}; install it with pip install 'django-tilestatus[mapnik]'"
    return None


def tilestache_config(path: Path) -> Path | dict[str, Any]:
    """The demo's TileStache config: the file when Mapnik imports, else a dict without ``world``.

    A dict's relative paths would resolve against the working directory, so
    the Disk cache's path is made absolute against the file's folder.
    """
    if mapnik_missing() is None:
        return path
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    config["layers"].pop(LAYER, None)
    cache = config.get("cache", {})
    if "path" in cache:
        cache["path"] = str(path.parent / cache["path"])
    return config
