"""TileStache providers for the tests: no network, no data files."""

from __future__ import annotations

import json
from typing import Any

from PIL import Image


class Solid:
    """A tile of one colour, so the bytes of a tile are predictable."""

    def __init__(self, layer: Any, color: str = "#3366cc"):
        self.layer = layer
        self.color = color

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        return Image.new("RGB", (width, height), self.color)


class Broken:
    """Fails to render, as a provider whose data source is broken would."""

    def __init__(self, layer: Any, message: str = "the data source is down"):
        self.layer = layer
        self.message = message

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        raise RuntimeError(self.message)


class Upstream:
    """Fails as a proxy whose upstream server is unreachable would."""

    def __init__(self, layer: Any):
        self.layer = layer

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        import urllib.error

        raise urllib.error.URLError("connection refused")


class _JSONTile:
    def __init__(self, content: dict[str, Any]):
        self.content = content

    def save(self, out: Any, format: str) -> None:
        out.write(json.dumps(self.content).encode("utf-8"))


class Points:
    """A JSON layer (for JSONP): the tile's coordinate as GeoJSON-ish data."""

    def __init__(self, layer: Any):
        self.layer = layer

    def getTypeByExtension(self, extension: str) -> tuple[str, str]:  # noqa: N802
        if extension.lower() != "json":
            from django_tilestatus.tilestache import import_tilestache

            raise import_tilestache().Core.KnownUnknown(f"no {extension} here")
        return "application/json", "JSON"

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> _JSONTile:  # noqa: N802
        return _JSONTile({"z": coord.zoom, "x": coord.column, "y": coord.row})
