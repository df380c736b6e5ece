"""The example project as the end-to-end and reliability tests serve it: a TileStache
config of the test's own, the demo layer's tiles, and the lines its workers log."""

from __future__ import annotations

import io
import json
from collections import Counter
from functools import cache
from pathlib import Path

from PIL import Image

from .gunicorn import GunicornServer
from .http import Answer

#: What the recorder logs, once per outage, when Redis fails and returns.
PAUSED = "Tile status recording paused"
RESUMED = "Tile status recording resumed"


def write_tilestache_config(directory: Path, slow_seconds: float = 30.0) -> Path:
    """A TileStache config with the demo layer, a slow layer and a private Disk cache."""
    config = {
        "cache": {
            "name": "Disk",
            "path": str(directory / "tiles"),
            "umask": "0022",
            "dirs": "portable",
        },
        "layers": {
            "demo": {
                "provider": {"class": "example_project.demo_provider:DemoProvider"},
                "allowed origin": "*",
                "maximum cache age": 60,
                "redirects": {"jpeg": "png"},
            },
            "slow": {
                "provider": {
                    "class": "tests.reliability.providers:Slow",
                    "kwargs": {"seconds": slow_seconds},
                },
                "write cache": False,
            },
            "points": {"provider": {"class": "tests.providers:Points"}},
        },
    }
    path = directory / "tilestache.cfg"
    path.write_text(json.dumps(config, indent=2))
    return path


@cache
def demo_pixels(zoom: int, column: int, row: int) -> bytes:
    """The demo layer's tile drawn here, in this process, as raw RGB pixels."""
    from example_project.demo_provider import DemoProvider

    coord = type("Coord", (), {"zoom": zoom, "column": column, "row": row})()
    return DemoProvider(layer=None).renderTile(256, 256, "", coord).convert("RGB").tobytes()


def is_demo_tile(answer: Answer, zoom: int, column: int, row: int) -> bool:
    """Whether ``answer`` is the demo layer's PNG for ``zoom/column/row``, pixel for pixel."""
    if not answer.ok or answer.headers.get("content-type") != "image/png":
        return False
    image = Image.open(io.BytesIO(answer.body))
    return image.convert("RGB").tobytes() == demo_pixels(zoom, column, row)


def warnings_by_pid(server: GunicornServer, needle: str) -> Counter[int]:
    """How many log lines containing ``needle`` each process wrote.

    The example project logs ``<date> <time> <pid> <LEVEL> <logger>: <message>``.
    """
    counts: Counter[int] = Counter()
    for line in server.log_lines(needle):
        fields = line.split()
        if len(fields) > 2 and fields[2].isdigit():
            counts[int(fields[2])] += 1
    return counts


def dropped_events(server: GunicornServer) -> int:
    """Events the workers said they dropped while Redis was away (from RESUMED lines)."""
    total = 0
    for line in server.log_lines(RESUMED):
        words = line.rsplit("; ", 1)[-1].split()
        if words and words[0].isdigit():
            total += int(words[0])
    return total
