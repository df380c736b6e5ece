"""Where a seeding job renders: a bounding box, and optionally polygons (longitude/latitude).

The polygon test is a plain one, not shapely's: a tile's box touches a polygon when
a corner of the box lies inside the polygon (holes excluded), a vertex of the polygon
lies inside the box, or an edge of the polygon crosses an edge of the box. Web
mercator tiles are longitude/latitude rectangles, and GeoJSON edges are straight
lines in longitude/latitude, so the test is made there. Polygons crossing the
antimeridian are not split: give two polygons instead.

Core module: imports the standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Web mercator's latitude bound: tiles end there.
MAX_LATITUDE = 85.0511287798066
WORLD = (-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE)

Point = tuple[float, float]
Ring = tuple[Point, ...]
Box = tuple[float, float, float, float]


class AreaError(ValueError):
    """A bounding box or GeoJSON that cannot be used, worded for a one-line error."""


def parse_bbox(text: str) -> Box:
    """``W,S,E,N`` in degrees; latitudes are clamped to web mercator's bound."""
    parts = [part.strip() for part in text.split(",")]
    try:
        west, south, east, north = (float(part) for part in parts)
    except ValueError:
        raise AreaError(
            f"--bbox {text!r}: expected four numbers W,S,E,N (longitude, latitude)."
        ) from None
    if not all(math.isfinite(value) for value in (west, south, east, north)):
        raise AreaError(f"--bbox {text!r}: the numbers must be finite.")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise AreaError(f"--bbox {text!r}: longitudes must lie within -180..180.")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise AreaError(f"--bbox {text!r}: latitudes must lie within -90..90.")
    if west >= east or south >= north:
        raise AreaError(f"--bbox {text!r}: inverted or empty: W must be < E and S < N.")
    return clamp((west, south, east, north))


def clamp(box: Box) -> Box:
    west, south, east, north = box
    south = min(max(south, -MAX_LATITUDE), MAX_LATITUDE)
    north = min(max(north, -MAX_LATITUDE), MAX_LATITUDE)
    if south >= north:
        raise AreaError("The area lies beyond web mercator's latitudes (±85.05°).")
    return west, south, east, north


@dataclass(frozen=True)
class Polygon:
    """An outer ring and its holes, each closed or not."""

    outer: Ring
    holes: tuple[Ring, ...] = ()

    @property
    def box(self) -> Box:
        xs = [x for x, _ in self.outer]
        ys = [y for _, y in self.outer]
        return min(xs), min(ys), max(xs), max(ys)

    def contains(self, point: Point) -> bool:
        return _in_ring(point, self.outer) and not any(_in_ring(point, h) for h in self.holes)

    def touches(self, box: Box) -> bool:
        west, south, east, north = box
        pw, ps, pe, pn = self.box
        if pw > east or pe < west or ps > north or pn < south:
            return False
        corners = ((west, south), (east, south), (east, north), (west, north))
        if any(self.contains(corner) for corner in corners):
            return True
        for ring in (self.outer, *self.holes):
            if any(west <= x <= east and south <= y <= north for x, y in ring):
                return True
            if any(_crosses_box(a, b, box) for a, b in _edges(ring)):
                return True
        return False


def _edges(ring: Ring) -> Iterable[tuple[Point, Point]]:
    for index, point in enumerate(ring):
        yield point, ring[(index + 1) % len(ring)]


def _in_ring(point: Point, ring: Ring) -> bool:
    """Even-odd rule: a horizontal ray from ``point`` crosses the ring an odd number of
    times."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in _edges(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    d1, d2 = _orientation(c, d, a), _orientation(c, d, b)
    d3, d4 = _orientation(a, b, c), _orientation(a, b, d)
    return ((d1 > 0) != (d2 > 0) or d1 == 0 or d2 == 0) and (
        (d3 > 0) != (d4 > 0) or d3 == 0 or d4 == 0
    )


def _crosses_box(a: Point, b: Point, box: Box) -> bool:
    west, south, east, north = box
    if max(a[0], b[0]) < west or min(a[0], b[0]) > east:
        return False
    if max(a[1], b[1]) < south or min(a[1], b[1]) > north:
        return False
    corners = ((west, south), (east, south), (east, north), (west, north))
    return any(_segments_cross(a, b, corners[i], corners[(i + 1) % 4]) for i in range(4))


@dataclass(frozen=True)
class Area:
    """A bounding box, and the polygons a tile must touch (none: the whole box)."""

    box: Box = WORLD
    polygons: tuple[Polygon, ...] = ()

    def touches(self, box: Box) -> bool:
        return not self.polygons or any(polygon.touches(box) for polygon in self.polygons)

    def as_json(self) -> list[list[list[list[float]]]]:
        """The polygons as GeoJSON ``MultiPolygon`` coordinates (kept with a job)."""
        return [
            [[list(point) for point in ring] for ring in (p.outer, *p.holes)] for p in self.polygons
        ]


def _ring(value: object) -> Ring:
    if not isinstance(value, list) or len(value) < 3:
        raise AreaError("GeoJSON: a polygon ring needs at least three positions.")
    points = []
    for position in value:
        if (
            not isinstance(position, list)
            or len(position) < 2
            or not all(isinstance(c, int | float) and math.isfinite(c) for c in position[:2])
        ):
            raise AreaError("GeoJSON: a position must be [longitude, latitude].")
        points.append((float(position[0]), float(position[1])))
    return tuple(points)


def _polygon(rings: object) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise AreaError("GeoJSON: a polygon needs an outer ring.")
    outer, *holes = (_ring(ring) for ring in rings)
    return Polygon(outer, tuple(holes))


def _polygons_of(value: object) -> list[Polygon]:
    """The polygons of any GeoJSON object (other geometries are ignored)."""
    if not isinstance(value, dict):
        return []
    kind = value.get("type")
    if kind == "FeatureCollection":
        features = value.get("features")
        return (
            [p for f in features or [] for p in _polygons_of(f)]
            if isinstance(features, list)
            else []
        )
    if kind == "Feature":
        return _polygons_of(value.get("geometry"))
    if kind == "GeometryCollection":
        geometries = value.get("geometries")
        return (
            [p for g in geometries or [] for p in _polygons_of(g)]
            if isinstance(geometries, list)
            else []
        )
    if kind == "Polygon":
        return [_polygon(value.get("coordinates"))]
    if kind == "MultiPolygon":
        coordinates = value.get("coordinates")
        if not isinstance(coordinates, list):
            raise AreaError("GeoJSON: a MultiPolygon needs a list of polygons.")
        return [_polygon(rings) for rings in coordinates]
    return []


def polygons_from_geojson(text: str) -> tuple[Polygon, ...]:
    """The polygons of a GeoJSON text; ``AreaError`` if it does not parse or has none."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise AreaError(f"GeoJSON does not parse: {exc}.") from None
    polygons = _polygons_of(value)
    if not polygons:
        raise AreaError("GeoJSON has no Polygon or MultiPolygon geometry.")
    return tuple(polygons)


def polygons_from_json(coordinates: Sequence[object]) -> tuple[Polygon, ...]:
    """Polygons from ``Area.as_json``."""
    return tuple(_polygon(rings) for rings in coordinates)


def area_of(box: Box | None, polygons: tuple[Polygon, ...] = ()) -> Area:
    """The area of a box (default: the world) and polygons: the box is narrowed to the
    polygons' extent."""
    west, south, east, north = box or WORLD
    if polygons:
        boxes = [polygon.box for polygon in polygons]
        west = max(west, min(b[0] for b in boxes))
        south = max(south, min(b[1] for b in boxes))
        east = min(east, max(b[2] for b in boxes))
        north = min(north, max(b[3] for b in boxes))
        if west > east or south > north:
            raise AreaError("The GeoJSON's polygons lie outside the bounding box.")
        west, east = max(west, -180.0), min(east, 180.0)
        if west >= east:
            east = min(west + 1e-9, 180.0)
            west = east - 1e-9
        if south >= north:
            north = south + 1e-9
    return Area(clamp((west, south, east, north)), polygons)
