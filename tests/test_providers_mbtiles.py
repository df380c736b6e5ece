"""TileStache's ``mbtiles`` provider and ``TileStache.MBTiles:Cache``, on files the tests make."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from tests.support.providers import (
    decode,
    encode,
    make_mbtiles,
    png,
    read_mbtiles,
    server_for,
)


def test_png_tiles_are_served_as_stored(tmp_path: Path) -> None:
    body = png("#00ff00")
    tileset = make_mbtiles(tmp_path / "green.mbtiles", "png", {(1, 1, 0): body})
    server = server_for({"green": {"provider": {"name": "mbtiles", "tileset": str(tileset)}}})

    response = server.handle("/green/1/1/0.png")

    assert (response.status, response.content_type, response.body) == (200, "image/png", body)


def test_jpg_tiles_are_served_as_jpeg(tmp_path: Path) -> None:
    body = encode(Image.new("RGB", (256, 256), "#0000ff"), "JPEG")
    tileset = make_mbtiles(tmp_path / "blue.mbtiles", "jpg", {(2, 3, 1): body})
    server = server_for({"blue": {"provider": {"name": "mbtiles", "tileset": str(tileset)}}})

    response = server.handle("/blue/2/3/1.jpg")

    assert (response.status, response.content_type, response.body) == (200, "image/jpeg", body)


def test_rows_are_flipped_from_tms(tmp_path: Path) -> None:
    tiles = {(1, 0, 0): png("#ff0000"), (1, 0, 1): png("#0000ff")}
    tileset = make_mbtiles(tmp_path / "rows.mbtiles", "png", tiles)
    server = server_for({"rows": {"provider": {"name": "mbtiles", "tileset": str(tileset)}}})

    north = decode(server.handle("/rows/1/0/0.png").body)
    south = decode(server.handle("/rows/1/0/1.png").body)

    assert (north.getpixel((0, 0)), south.getpixel((0, 0))) == ((255, 0, 0, 255), (0, 0, 255, 255))


@pytest.mark.django_db
def test_a_tile_the_file_lacks_is_a_clear_404(tmp_path: Path, settings: object) -> None:
    tileset = make_mbtiles(tmp_path / "one.mbtiles", "png", {(0, 0, 0): png("#00ff00")})
    config = {
        "cache": {"name": "Test"},
        "layers": {"one": {"provider": {"name": "mbtiles", "tileset": str(tileset)}}},
    }
    settings.TILESTATUS = {**settings.TILESTATUS, "CONFIG": config}  # type: ignore[attr-defined]

    response = Client().get("/tiles/one/3/2/1.png")

    assert response.status_code == 404
    assert b"No such tile" in response.content


def test_an_unknown_extension_is_a_400(tmp_path: Path) -> None:
    tileset = make_mbtiles(tmp_path / "one.mbtiles", "png", {(0, 0, 0): png("#00ff00")})
    server = server_for({"one": {"provider": {"name": "mbtiles", "tileset": str(tileset)}}})

    assert server.handle("/one/0/0/0.gif").status == 400


def test_the_mbtiles_cache_stores_rendered_tiles_and_serves_them(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.mbtiles"
    cache = {
        "class": "TileStache.MBTiles:Cache",
        "kwargs": {"filename": str(cache_file), "format": "png", "name": "cache"},
    }
    layers = {
        "solid": {"provider": {"class": "tests.providers:Solid", "kwargs": {"color": "#123456"}}}
    }
    server = server_for(layers, cache)

    first = server.handle("/solid/2/1/3.png")

    assert first.status == 200
    assert read_mbtiles(cache_file) == {(2, 1, 3): first.body}
    # Served from the cache from now on: change what is stored, and that comes back.
    marker = png("#abcdef")
    with closing(sqlite3.connect(cache_file)) as db, db:
        db.execute("UPDATE tiles SET tile_data = ?", (marker,))
    assert server.handle("/solid/2/1/3.png").body == marker


def test_the_mbtiles_cache_removes_a_tile_and_reuses_an_existing_file(tmp_path: Path) -> None:
    cache_file = make_mbtiles(tmp_path / "cache.mbtiles", "png", {(0, 0, 0): png("#000000")})
    cache = {
        "class": "TileStache.MBTiles:Cache",
        "kwargs": {"filename": str(cache_file), "format": "png", "name": "cache"},
    }
    layers = {"solid": {"provider": {"class": "tests.providers:Solid"}}}
    server = server_for(layers, cache)
    server.handle("/solid/1/1/1.png")
    assert set(read_mbtiles(cache_file)) == {(0, 0, 0), (1, 1, 1)}

    layer = server.configuration.layers["solid"]
    server.configuration.cache.remove(layer, layer_coord(1, 1, 1), "PNG")

    assert set(read_mbtiles(cache_file)) == {(0, 0, 0)}


def layer_coord(zoom: int, column: int, row: int) -> object:
    from ModestMaps.Core import Coordinate

    return Coordinate(row, column, zoom)
