"""TileStache's ``mapnik`` and ``mapnik grid`` providers with the Mapnik 4 wheels.

Each test writes a GeoJSON square (longitude 0 to 90, latitude 0 to 60) and a
Mapnik XML style that fills it red on white, then renders through the app's tile
server and checks pixels: red inside the square, white elsewhere.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.tilestache import import_tilestache, set_mapnik_lock_observer
from tests.support import wait_until
from tests.support.providers import decode, require_module, server_for

require_module("mapnik", "mapnik")

SQUARE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "Square", "rank": 7},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[0, 0], [90, 0], [90, 60], [0, 60], [0, 0]]],
            },
        }
    ],
}

STYLE = """<Map srs="epsg:3857" background-color="#ffffff">
  <Style name="fill"><Rule><PolygonSymbolizer fill="#ff0000"/></Rule></Style>
  <Layer name="squares" srs="epsg:4326">
    <StyleName>fill</StyleName>
    <Datasource>
      <Parameter name="type">geojson</Parameter>
      <Parameter name="file">square.geojson</Parameter>
    </Datasource>
  </Layer>
</Map>
"""

RED, WHITE = (255, 0, 0, 255), (255, 255, 255, 255)
#: In tile 1/1/0 (longitude 0 to 180, north): longitude 45, latitude 30 and
#: longitude 140, latitude 80 (outside the square).
INSIDE, OUTSIDE = (64, 211), (199, 40)


@pytest.fixture
def mapfile(tmp_path: Path) -> Path:
    (tmp_path / "square.geojson").write_text(json.dumps(SQUARE), encoding="utf-8")
    style = tmp_path / "style.xml"
    style.write_text(STYLE, encoding="utf-8")
    return style


class CountingObserver:
    """Counts renders through the Mapnik lock observer seam."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.waiting_calls = 0

    def waiting(self) -> None:
        self.waiting_calls += 1

    def acquired(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def observer() -> Any:
    counting = CountingObserver()
    set_mapnik_lock_observer(counting)
    yield counting
    set_mapnik_lock_observer(None)


def test_a_mapnik_tile_shows_the_polygon_where_it_is(mapfile: Path) -> None:
    server = server_for({"squares": {"provider": {"name": "mapnik", "mapfile": str(mapfile)}}})

    response = server.handle("/squares/1/1/0.png")

    assert (response.status, response.content_type) == (200, "image/png")
    image = decode(response.body)
    assert image.size == (256, 256)
    assert image.getpixel(INSIDE) == RED
    assert image.getpixel(OUTSIDE) == WHITE
    west = decode(server.handle("/squares/1/0/0.png").body)
    assert west.getextrema()[:3] == ((255, 255), (255, 255), (255, 255))  # all white


def test_a_metatile_renders_once_for_all_its_tiles(
    mapfile: Path, tmp_path: Path, observer: CountingObserver
) -> None:
    layer = {
        "provider": {"name": "mapnik", "mapfile": str(mapfile)},
        "metatile": {"rows": 2, "columns": 2, "buffer": 64},
    }
    cache = {"name": "Disk", "path": str(tmp_path / "cache"), "umask": "0022"}
    server = server_for({"squares": layer}, cache)

    tiles = {
        xy: decode(server.handle(f"/squares/1/{xy[0]}/{xy[1]}.png").body)
        for xy in [(1, 0), (0, 0), (0, 1), (1, 1)]
    }

    assert len(observer.waits) == 1, "the 2x2 metatile should render once"
    assert observer.waiting_calls == 1
    assert tiles[(1, 0)].getpixel(INSIDE) == RED
    assert tiles[(1, 0)].getpixel(OUTSIDE) == WHITE
    for xy in [(0, 0), (0, 1), (1, 1)]:
        assert tiles[xy].getextrema()[:3] == ((255, 255), (255, 255), (255, 255)), xy
    assert len(list((tmp_path / "cache/squares/1").rglob("*.png"))) == 4


def test_a_utfgrid_names_the_feature_under_each_cell(mapfile: Path) -> None:
    provider = {"name": "mapnik grid", "mapfile": str(mapfile), "fields": ["name"], "scale": 4}
    server = server_for({"grid": {"provider": provider}})

    response = server.handle("/grid/1/1/0.json")

    assert response.status == 200
    assert response.content_type.startswith("application/json")
    grid = json.loads(response.body)
    assert len(grid["grid"]) == 64 and {len(row) for row in grid["grid"]} == {64}
    inside = grid["grid"][INSIDE[1] // 4][INSIDE[0] // 4]
    outside = grid["grid"][OUTSIDE[1] // 4][OUTSIDE[0] // 4]
    key = grid["keys"][_grid_index(inside)]
    assert grid["data"][key] == {"name": "Square"}
    assert grid["keys"][_grid_index(outside)] == ""


def test_a_utfgrid_of_several_layers_names_each_feature_s_layer(mapfile: Path) -> None:
    provider = {
        "name": "mapnik grid",
        "mapfile": str(mapfile),
        "layers": [[0, ["name"]]],
        "layer_id_key": "layer",
    }
    server = server_for({"grid": {"provider": provider}})

    grid = json.loads(server.handle("/grid/1/1/0.json").body)

    inside = grid["grid"][INSIDE[1] // 4][INSIDE[0] // 4]
    assert grid["data"][grid["keys"][_grid_index(inside)]] == {"name": "Square", "layer": "squares"}


def test_a_metatiled_utfgrid_is_cut_into_tiles(mapfile: Path) -> None:
    provider = {"name": "mapnik grid", "mapfile": str(mapfile), "fields": ["name"]}
    layer = {"provider": provider, "metatile": {"rows": 2, "columns": 2}}
    server = server_for({"grid": layer})

    grid = json.loads(server.handle("/grid/1/1/0.json").body)

    assert len(grid["grid"]) == 64 and {len(row) for row in grid["grid"]} == {64}
    inside = grid["grid"][INSIDE[1] // 4][INSIDE[0] // 4]
    assert grid["data"][grid["keys"][_grid_index(inside)]] == {"name": "Square"}


def test_a_broken_style_fails_the_tile_and_is_read_again(tmp_path: Path) -> None:
    style = tmp_path / "broken.xml"
    style.write_text("<Map><Layer", encoding="utf-8")
    server = server_for({"broken": {"provider": {"name": "mapnik", "mapfile": str(style)}}})

    with pytest.raises(RuntimeError):
        server.handle("/broken/0/0/0.png")
    (tmp_path / "square.geojson").write_text(json.dumps(SQUARE), encoding="utf-8")
    style.write_text(STYLE, encoding="utf-8")
    assert decode(server.handle("/broken/1/1/0.png").body).getpixel(INSIDE) == RED


def test_the_lock_observer_times_a_render_waiting_for_another(
    mapfile: Path, observer: CountingObserver
) -> None:
    import TileStache.Mapnik

    server = server_for({"squares": {"provider": {"name": "mapnik", "mapfile": str(mapfile)}}})
    lock = TileStache.Mapnik.global_mapnik_lock
    lock.inner.acquire()  # another render holds the lock
    worker = threading.Thread(target=server.handle, args=("/squares/1/1/0.png",))
    worker.start()
    wait_until(lambda: observer.waiting_calls, 30, interval=0.01)
    assert observer.waiting_calls == 1 and observer.waits == []  # waiting, not yet holding
    assert worker.is_alive()
    lock.inner.release()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(observer.waits) == 1 and observer.waits[0] > 0


def test_tilestache_imported_with_mapnik_4_and_left_its_module_as_it_was() -> None:
    import mapnik

    tilestache_mapnik = import_tilestache().Mapnik
    assert tilestache_mapnik.Box2d is mapnik.Box2d
    assert not hasattr(mapnik, "mapnik_version"), "the lent version function was not taken back"


def _grid_index(char: str) -> int:
    """The index into ``keys`` of a UTFGrid character (the UTFGrid spec's decoding)."""
    code = ord(char)
    code -= 1 if code >= 93 else 0
    code -= 1 if code >= 35 else 0
    return code - 32
