"""Reading ``tilestatus_seed`` and ``tilestatus_clean``'s arguments into a plan (adapter).

Every mistake is a ``CommandError`` of one line: unknown layer, zooms outside the
layer's, a bad bounding box or GeoJSON, a bad ``--older-than``.
"""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from .. import runtime
from .area import Area, AreaError, Polygon, area_of, parse_bbox, polygons_from_geojson
from .plan import Plan
from .running import is_web_mercator, layer_shape, zoom_range

#: Above this many tiles in the box, a GeoJSON job's tiles are not counted one by
#: one: the box's count stands as an upper bound.
COUNT_LIMIT = 10**7

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def add_area_arguments(parser: CommandParser) -> None:
    parser.add_argument("layers", nargs="*", metavar="LAYER", help="Layers of the config.")
    parser.add_argument(
        "--zooms", metavar="A-B", help="Zoom levels, inclusive: 0-12, or one zoom: 14."
    )
    parser.add_argument(
        "--bbox", metavar="W,S,E,N", help="Bounding box in degrees (longitude, latitude)."
    )
    parser.add_argument(
        "--geojson",
        metavar="FILE",
        help="Only tiles touching this GeoJSON file's polygons (within --bbox if given).",
    )
    parser.add_argument(
        "--older-than",
        metavar="WHEN",
        help="Cached tiles written before WHEN count as missing: a duration ago "
        "(90s, 30m, 12h, 7d, 2w) or an ISO time (2025-06-01T00:00:00+00:00).",
    )
    parser.add_argument("--extension", default="png", help="The tiles' extension (default: png).")


def parse_when(text: str, now: float | None = None) -> float:
    """A unix time from a duration ago or an ISO time."""
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"--older-than {text!r}: expected a duration (30m, 12h, 7d) or an ISO time."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def parse_zooms(text: str | None) -> tuple[int, int]:
    if not text:
        raise CommandError("--zooms is required: e.g. --zooms 0-12.")
    match = re.fullmatch(r"\s*(\d{1,2})\s*(?:-\s*(\d{1,2})\s*)?", text)
    if not match:
        raise CommandError(f"--zooms {text!r}: expected A-B (e.g. 0-12) or one zoom.")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if low > high:
        raise CommandError(f"--zooms {text!r}: the first zoom is past the last.")
    return low, high


def read_area(bbox: str | None, geojson: str | None) -> Area:
    try:
        box = parse_bbox(bbox) if bbox else None
        polygons: tuple[Polygon, ...] = ()
        if geojson:
            try:
                text = Path(geojson).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"--geojson {geojson}: cannot read it ({exc}).") from None
            polygons = polygons_from_geojson(text)
        return area_of(box, polygons)
    except AreaError as exc:
        raise CommandError(str(exc)) from None


@dataclass(frozen=True)
class Request:
    """The plan of a command's arguments, and what a job keeps to make it again."""

    plan: Plan
    spec: dict[str, Any]


def check_layers(names: list[str], low: int, high: int) -> list[Any]:
    if not names:
        raise CommandError("Name at least one layer.")
    layers = runtime.get_server().configuration.layers
    chosen = []
    for name in names:
        layer = layers.get(name)
        if layer is None:
            known = ", ".join(sorted(layers)) or "none"
            raise CommandError(f"Unknown layer {name!r} (layers: {known}).")
        first, last = zoom_range(layer)
        if low < first or high > last:
            raise CommandError(
                f"Zooms {low}-{high} lie outside layer {name!r}'s zooms {first}-{last}."
            )
        if not is_web_mercator(layer):
            raise CommandError(f"Layer {name!r} is not in web mercator: it cannot be seeded.")
        chosen.append(layer)
    return chosen


def request_of(options: dict[str, Any]) -> Request:
    """The plan and job spec of the command's options; ``CommandError`` for bad input."""
    low, high = parse_zooms(options["zooms"])
    names = list(dict.fromkeys(options["layers"]))
    layers = check_layers(names, low, high)
    area = read_area(options["bbox"], options["geojson"])
    when = options.get("older_than")
    older_than = parse_when(when) if when else None
    if options.get("force"):
        older_than = time.time()  # tiles this job writes are newer: a resume skips them
    plan = Plan(
        [layer_shape(layer, name) for layer, name in zip(layers, names, strict=True)],
        low,
        high,
        area,
    )
    spec = {
        "layers": names,
        "min_zoom": low,
        "max_zoom": high,
        "bbox": list(area.box),
        "polygons": area.as_json(),
        "extension": options["extension"],
        "older_than": older_than,
        "force": bool(options.get("force")),
    }
    return Request(plan, spec)


def count_tiles(plan: Plan) -> tuple[int, bool]:
    """The plan's tiles, and whether that is exact (else the box's count, an upper bound)."""
    box = plan.box_tiles()
    if not plan.area.polygons:
        return box, True
    if box > COUNT_LIMIT:
        return box, False
    return sum(figures.tiles for figures in plan.figures()), True
