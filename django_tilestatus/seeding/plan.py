"""The tiles of a seeding job, cut into numbered chunks of whole metatiles.

A job's tiles are, per layer and zoom (a *segment*), the tiles of its area. A
segment's metatiles (the layer's ``metatile`` rows x columns, aligned as TileStache
aligns them) are numbered row by row over the area's extent, and cut into chunks of
``metatiles_per_chunk`` consecutive metatiles; chunks are numbered across segments.
So a chunk is a few integers, whole metatiles are never split between chunks (no two
workers render one metatile), and a plan of 10**8 tiles costs no more memory than
one of 10: nothing is listed, everything is computed from the numbers.

Tile math (longitude/latitude to tile columns and rows, and back) is mercantile's.

Core module: imports the standard library, mercantile and ``area`` only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import mercantile

from .area import Area

#: Tiles a chunk holds about: its metatiles are at least this many tiles (one
#: metatile if it is bigger), so progress and resume are fine-grained ...
CHUNK_TILES = 64
#: ... but a job has at most this many chunks (8 KiB of done-bits in Redis), so
#: chunks grow for huge jobs.
MAX_CHUNKS = 65536


@dataclass(frozen=True)
class LayerShape:
    """What a plan needs of a layer: its name and metatile size."""

    name: str
    rows: int = 1
    columns: int = 1


@dataclass(frozen=True)
class Segment:
    """The tiles of one layer at one zoom, and their chunks."""

    layer: LayerShape
    zoom: int
    #: Tile columns and rows of the area (inclusive).
    x0: int
    y0: int
    x1: int
    y1: int
    metatiles_per_chunk: int
    first_chunk: int

    @property
    def meta_x0(self) -> int:
        return self.x0 // self.layer.columns

    @property
    def meta_y0(self) -> int:
        return self.y0 // self.layer.rows

    @property
    def metas_wide(self) -> int:
        return self.x1 // self.layer.columns - self.meta_x0 + 1

    @property
    def metatiles(self) -> int:
        return self.metas_wide * (self.y1 // self.layer.rows - self.meta_y0 + 1)

    @property
    def chunks(self) -> int:
        return -(-self.metatiles // self.metatiles_per_chunk)

    @property
    def box_tiles(self) -> int:
        return (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)

    def metatile(self, index: int) -> tuple[int, int]:
        """The metatile ``index`` of the segment: its column and row in metatiles."""
        return self.meta_x0 + index % self.metas_wide, self.meta_y0 + index // self.metas_wide

    def tiles_of(self, index: int, area: Area) -> list[tuple[int, int]]:
        """The area's tiles ``(x, y)`` in the segment's metatile ``index``."""
        mx, my = self.metatile(index)
        columns, rows = self.layer.columns, self.layer.rows
        xs = range(max(mx * columns, self.x0), min((mx + 1) * columns - 1, self.x1) + 1)
        ys = range(max(my * rows, self.y0), min((my + 1) * rows - 1, self.y1) + 1)
        tiles = [(x, y) for y in ys for x in xs]
        if area.polygons:
            tiles = [t for t in tiles if area.touches(tile_box(t[0], t[1], self.zoom))]
        return tiles


def tile_box(x: int, y: int, zoom: int) -> tuple[float, float, float, float]:
    bounds = mercantile.bounds(x, y, zoom)
    return bounds.west, bounds.south, bounds.east, bounds.north


def tile_range(area: Area, zoom: int) -> tuple[int, int, int, int]:
    """Columns and rows ``x0, y0, x1, y1`` (inclusive) of the tiles the box covers."""
    west, south, east, north = area.box
    last = (1 << zoom) - 1
    # A box edge on a tile edge does not take the next tile in (mercantile.tiles's way).
    epsilon = 1e-9
    upper_left = mercantile.tile(west, north, zoom)
    lower_right = mercantile.tile(east - epsilon, south + epsilon, zoom)
    x0, y0 = min(max(upper_left.x, 0), last), min(max(upper_left.y, 0), last)
    x1, y1 = min(max(lower_right.x, 0), last), min(max(lower_right.y, 0), last)
    return x0, y0, max(x0, x1), max(y0, y1)


@dataclass(frozen=True)
class Chunk:
    number: int
    segment: Segment
    #: The segment's metatiles ``start`` to ``stop`` (exclusive).
    start: int
    stop: int


@dataclass(frozen=True)
class ZoomFigures:
    layer: str
    zoom: int
    tiles: int
    metatiles: int


class Plan:
    """The chunks of a job over ``layers`` at ``zooms`` within ``area``."""

    def __init__(
        self,
        layers: Sequence[LayerShape],
        min_zoom: int,
        max_zoom: int,
        area: Area,
        chunk_tiles: int = CHUNK_TILES,
        max_chunks: int = MAX_CHUNKS,
    ):
        self.area = area
        ranges = [
            (layer, zoom, tile_range(area, zoom))
            for layer in layers
            for zoom in range(min_zoom, max_zoom + 1)
        ]
        metatiles = 0
        for layer, _, (x0, y0, x1, y1) in ranges:
            wide = x1 // layer.columns - x0 // layer.columns + 1
            high = y1 // layer.rows - y0 // layer.rows + 1
            metatiles += wide * high
        # Grown for huge jobs, so there are at most ``max_chunks`` (give or take a
        # segment's last, partial chunk).
        factor = max(1, math.ceil(metatiles / max(1, max_chunks - len(ranges))))
        segments = []
        first = 0
        for layer, zoom, (x0, y0, x1, y1) in ranges:
            per_chunk = max(1, chunk_tiles // (layer.rows * layer.columns)) * factor
            segment = Segment(layer, zoom, x0, y0, x1, y1, per_chunk, first)
            segments.append(segment)
            first += segment.chunks
        self.segments = segments
        self.chunks = first

    def chunk(self, number: int) -> Chunk:
        if not 0 <= number < self.chunks:
            raise IndexError(number)
        for segment in self.segments:
            if number < segment.first_chunk + segment.chunks:
                index = number - segment.first_chunk
                start = index * segment.metatiles_per_chunk
                stop = min(start + segment.metatiles_per_chunk, segment.metatiles)
                return Chunk(number, segment, start, stop)
        raise IndexError(number)  # pragma: no cover - the loop covers every number

    def figures(self) -> Iterator[ZoomFigures]:
        """Tiles and metatiles (holding one tile or more) per layer and zoom; with
        polygons, each metatile of the box is looked at."""
        for segment in self.segments:
            if not self.area.polygons:
                yield ZoomFigures(
                    segment.layer.name, segment.zoom, segment.box_tiles, segment.metatiles
                )
                continue
            tiles = metas = 0
            for index in range(segment.metatiles):
                count = len(segment.tiles_of(index, self.area))
                tiles += count
                metas += count > 0
            yield ZoomFigures(segment.layer.name, segment.zoom, tiles, metas)

    def box_tiles(self) -> int:
        """Tiles of the box, before polygons narrow it: an upper bound, computed at once."""
        return sum(segment.box_tiles for segment in self.segments)
