"""The example files of docs/providers.md work as the page shows them.

The blocks the page marks ``<!-- file: path -->`` are written into a folder as a reader
would save them; the app then loads the page's ``tilestache.cfg`` and serves a tile of
each layer: the provider class's checkerboard in the colours its ``kwargs`` give, and
(with the ``mapnik`` extra, always under ``CI=true``) Mapnik's drawing of the GeoJSON
polygon in the style's fill colour.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from PIL import ImageColor

from django_tilestatus.serving.tile_server import load_server
from tests.support import ROOT
from tests.support.docs import write_documented_files
from tests.support.providers import decode, require_module

PROVIDERS = ROOT / "docs" / "providers.md"
#: The provider module the page saves beside its config.
MODULE = "checkerboard"


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """The page's files, saved in a folder; the import path and modules left as they were."""
    saved_path = list(sys.path)
    written = write_documented_files(PROVIDERS, tmp_path)
    assert sorted(written) == [
        f"{MODULE}.py",
        "shapes/square.geojson",
        "shapes/style.xml",
        "tilestache.cfg",
    ]
    yield tmp_path
    sys.path[:] = saved_path
    sys.modules.pop(MODULE, None)


def config(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "tilestache.cfg").read_text(encoding="utf-8"))


def without_mapnik_layers(folder: Path) -> Path:
    """The page's config minus its Mapnik layers, beside it (its relative paths hold)."""
    data = config(folder)
    data["layers"] = {
        name: layer
        for name, layer in data["layers"].items()
        if layer["provider"].get("name") != "mapnik"
    }
    path = folder / "without-mapnik.cfg"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def rgba(colour: str) -> tuple[int, ...]:
    return (*ImageColor.getrgb(colour)[:3], 255)


def test_the_provider_class_gets_its_kwargs(folder: Path) -> None:
    server = load_server(without_mapnik_layers(folder))
    kwargs = config(folder)["layers"]["checkers"]["provider"]["kwargs"]
    first, second = (rgba(colour) for colour in kwargs["colours"])
    side = 256 // kwargs["squares"]

    response = server.handle("/checkers/0/0/0.png")

    assert (response.status, response.content_type) == (200, "image/png")
    tile = decode(response.body)
    assert tile.size == (256, 256)
    assert tile.getpixel((side // 2, side // 2)) == first
    assert tile.getpixel((side + side // 2, side // 2)) == second
    assert tile.getpixel((side // 2, side + side // 2)) == second
    assert tile.getpixel((side + side // 2, side + side // 2)) == first
    assert (folder / "tile-cache" / "checkers").is_dir()  # the cache path, beside the config


def test_a_kwarg_the_class_does_not_take_fails_the_config_as_the_page_says(
    folder: Path, settings: Any
) -> None:
    path = without_mapnik_layers(folder)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["layers"]["checkers"]["provider"]["kwargs"]["colour"] = "#ff0000"
    path.write_text(json.dumps(data), encoding="utf-8")
    settings.TILESTATUS = {**settings.TILESTATUS, "CONFIG": path}

    found = [m for m in run_checks() if m.id and m.id.startswith("tilestatus.")]

    assert [m.id for m in found] == ["tilestatus.E002"]
    message = "Checkerboard.__init__() got an unexpected keyword argument 'colour'"
    assert message in found[0].msg
    assert message in PROVIDERS.read_text(encoding="utf-8").replace("\n", " ")


def test_the_mapnik_layer_draws_the_polygon_in_the_style_s_colour(folder: Path) -> None:
    require_module("mapnik", "mapnik")
    style = ElementTree.parse(folder / "shapes" / "style.xml").getroot()
    symbolizer = style.find(".//PolygonSymbolizer")
    assert symbolizer is not None
    fill, background = rgba(symbolizer.attrib["fill"]), rgba(style.attrib["background-color"])
    layer = config(folder)["layers"]["shapes"]
    assert layer["provider"]["name"] == "mapnik" and "metatile" in layer
    server = load_server(folder / "tilestache.cfg")

    response = server.handle("/shapes/2/2/1.png")

    assert (response.status, response.content_type) == (200, "image/png")
    tile = decode(response.body)
    assert tile.size == (256, 256)
    # Tile 2/2/1 spans longitude 0 to 90 and latitude 0 to 66.5 (web Mercator): pixel
    # (128, 166) is longitude 45, latitude 30, inside the square; (128, 10) is latitude 65.
    assert tile.getpixel((128, 166)) == fill
    assert tile.getpixel((128, 10)) == background
    # The 4x4 metatile put the block's other tiles in the Disk cache beside the config.
    assert len(list((folder / "tile-cache" / "shapes" / "2").rglob("*.png"))) == 16
