"""A coordinate outside a layer's grid or zooms is 404, before the cache or the provider.

Anonymous clients could otherwise make the server render, and the cache store, tiles
without end: every column and row of every zoom TileStache would accept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from django_tilestatus.serving.tile_server import TileGrid, load_server, tile_grid

SOLID = {"provider": {"class": "tests.providers:Solid"}}


class CountingCache:
    """A TileStache cache that counts what is asked of it and stores nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def lock(self, *args: Any) -> None:
        self.calls.append("lock")

    def unlock(self, *args: Any) -> None:
        self.calls.append("unlock")

    def read(self, *args: Any) -> None:
        self.calls.append("read")

    def save(self, *args: Any) -> None:
        self.calls.append("save")

    def remove(self, *args: Any) -> None:
        self.calls.append("remove")


def server_with(layer: dict[str, Any]) -> tuple[Any, CountingCache]:
    server = load_server({"cache": {"name": "Test"}, "layers": {"grid": layer}})
    cache = CountingCache()
    server.configuration.cache.inner = cache
    return server, cache


@pytest.mark.parametrize(
    "path",
    [
        "grid/0/1/0.png",
        "grid/0/0/1.png",
        "grid/1/2/1.png",
        "grid/1/-1/0.png",
        "grid/3/0/-1.png",
        "grid/0/-4258557161/1049203985.png",
        "grid/33/0/0.png",
        "grid/1/2/1.jpeg",  # an extension redirect too
    ],
)
def test_outside_the_grid_is_404_and_touches_neither_cache_nor_provider(path: str) -> None:
    server, cache = server_with({**SOLID, "redirects": {"jpeg": "png"}})
    answer = server.handle(path)
    assert answer.status == 404
    assert b"outside the layer's zooms or extent" in answer.body
    assert cache.calls == []


@pytest.mark.parametrize("path", ["grid/0/0/0.png", "grid/1/1/1.png", "grid/3/7/7.png"])
def test_inside_the_grid_is_served(path: str) -> None:
    server, cache = server_with(SOLID)
    assert server.handle(path).status == 200
    assert "read" in cache.calls


def test_wgs84_has_two_columns_at_zoom_0() -> None:
    server, _ = server_with({**SOLID, "projection": "WGS84"})
    assert server.handle("grid/0/1/0.png").status == 200
    assert server.handle("grid/0/2/0.png").status == 404
    assert server.handle("grid/0/0/1.png").status == 404
    assert tile_grid(server.configuration.layers["grid"]) == TileGrid(0, 32, 2, 1)


def test_zooms_outside_the_layer_bounds_are_404() -> None:
    bounds = {"low": 2, "high": 5, "north": 50, "south": 40, "east": 10, "west": 0}
    server, cache = server_with({**SOLID, "bounds": bounds})
    assert server.handle("grid/1/0/0.png").status == 404
    assert server.handle("grid/6/0/0.png").status == 404
    assert cache.calls == []
    assert server.handle("grid/2/2/1.png").status == 200


def test_a_list_of_bounds_spans_all_their_zooms() -> None:
    near = {"low": 2, "high": 5, "north": 50, "south": 40, "east": 10, "west": 0}
    far = {"low": 7, "high": 9, "north": 50, "south": 40, "east": 10, "west": 0}
    server, _ = server_with({**SOLID, "bounds": [near, far]})
    grid = tile_grid(server.configuration.layers["grid"])
    assert (grid.min_zoom, grid.max_zoom) == (2, 9)


def test_anonymous_requests_outside_the_grid_write_no_cache_file(tile_client: Any) -> None:
    client: Client = tile_client()
    cache_dir = Path(settings.TILESTACHE_CONFIG["cache"]["path"])
    before = {path for path in cache_dir.rglob("*") if path.is_file()}
    for column in (-4258557161, -1, 2, 1049203985):
        assert client.get(f"/tiles/solid/1/{column}/0.png").status_code == 404
    after = {path for path in cache_dir.rglob("*") if path.is_file()}
    assert after == before
