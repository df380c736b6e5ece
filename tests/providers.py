"""TileStache providers for the tests: no network, no data files."""

from __future__ import annotations

import json
import time
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


def hang_in_provider(seconds: float) -> None:
    """Where a hung render waits: its name is what a stack snapshot must show."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


class Hang:
    """Hangs for ``seconds`` before drawing, as a render stuck on a slow database would."""

    def __init__(self, layer: Any, seconds: float = 60.0):
        self.layer = layer
        self.seconds = float(seconds)

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        hang_in_provider(self.seconds)
        return Image.new("RGB", (width, height), "#888888")


class Abort:
    """Raises an exception that is not an ``Exception``, as ``sys.exit()`` in a provider would."""

    def __init__(self, layer: Any, exception: str = "SystemExit"):
        self.layer = layer
        self.exception = {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt}[
            exception
        ]

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        raise self.exception()


class HangWhileFile:
    """Draws after ``seconds``, or for as long as the file ``path`` exists (at most a minute):
    a render a test holds up, then lets go of.

    When the file ``die`` exists as a render begins (the metatile's lock just taken), one
    process takes it (renamed to ``<die>.pid``, holding its PID) and SIGKILLs itself: a
    holder killed before its recorder could write anything of the lock."""

    def __init__(self, layer: Any, path: str, seconds: float = 0.1, die: str | None = None):
        self.layer = layer
        self.path = path
        self.seconds = float(seconds)
        self.die = die

    def _die_if_told(self) -> None:
        import os
        import signal

        if not self.die:
            return
        try:
            os.rename(self.die, self.die + ".pid")
        except FileNotFoundError:
            return
        with open(self.die + ".pid", "w", encoding="utf-8") as pid:
            pid.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)

    def _draw(self, width: int, height: int) -> Image.Image:
        import os

        self._die_if_told()
        deadline = time.monotonic() + 60
        while os.path.exists(self.path) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(self.seconds)
        return Image.new("RGB", (width, height), "#448844")

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        return self._draw(width, height)

    def renderArea(self, width: int, height: int, srs: str, *bounds: Any) -> Image.Image:  # noqa: N802
        """A whole metatile at once (TileStache cuts it and caches every tile)."""
        return self._draw(width, height)


def _note(path: str | None, line: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as log:  # one write per line: O_APPEND
            log.write(line + "\n")


class Counting:
    """A solid tile, each render noted as ``z/x/y`` in the file ``log`` (seeding tests);
    ``seconds`` of sleep, or of busy CPU with ``cpu``, make each render slower."""

    def __init__(self, layer: Any, log: str | None = None, seconds: float = 0.0, cpu: bool = False):
        self.layer = layer
        self.log = log
        self.seconds = seconds
        self.cpu = cpu

    def _wait(self) -> None:
        if not self.seconds:
            return
        if not self.cpu:
            time.sleep(self.seconds)
            return
        # The thread's own CPU: a seeding command renders in a thread beside its
        # recorder's, whose CPU must not shorten this render.
        end = time.thread_time() + self.seconds
        while time.thread_time() < end:
            pass

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        self._wait()
        _note(self.log, f"{int(coord.zoom)}/{int(coord.column)}/{int(coord.row)}")
        return Image.new("RGB", (width, height), "#33aa66")


class CountingArea(Counting):
    """Draws whole metatiles (``renderArea``), each noted as ``area z xmin ymax``."""

    def renderArea(  # noqa: N802
        self,
        width: int,
        height: int,
        srs: str,
        xmin: float,
        ymin: float,
        xmax: float,
        ymax: float,
        zoom: int,
    ) -> Image.Image:
        self._wait()
        _note(self.log, f"area {int(zoom)} {round(xmin)} {round(ymax)}")
        return Image.new("RGB", (width, height), "#3366aa")
