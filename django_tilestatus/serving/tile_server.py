"""Answering a tile path as TileStache's WSGI server would, minus its Python 3 bugs.

``TileServer.handle`` follows ``TileStache.requestHandler2`` (index, preview,
extension redirects, JSONP, allowed origin, maximum cache age, tiles) but
returns bytes bodies, answers 400/404 instead of the "Known unknown" 500,
validates the JSONP callback, dates ``Expires`` without ``utcnow`` and leaves
provider exceptions to the caller, which records them.

Core module: imports the standard library, ``tilestache_cache`` and ``tilestache`` only.
"""

from __future__ import annotations

import email.utils
import functools
import http.client
import re
import time
import urllib.error
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ..tilestache import TileNotFoundError, build_configuration, import_tilestache
from .tilestache_cache import InstrumentedCache

#: JSONP callbacks allowed: dotted JavaScript identifiers, ASCII, bounded.
CALLBACK_PATTERN = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*", re.ASCII)
MAX_CALLBACK_LENGTH = 128

#: Characters a path keeps as they are in a ``Location``: RFC 3986 ``pchar`` and ``/``.
#: Everything else (a backslash, ``?``, ``#``, spaces, controls, non-ASCII) is percent-encoded.
PATH_SAFE = "/:@!$&'()*+,;=~"


def site_path(path: str) -> str:
    """``path`` as an absolute path on this site, whatever the mount prefix holds.

    The prefix comes from ``SCRIPT_NAME``, which a proxy may pass on unchecked: a
    value such as ``//evil.example``, ``/\\evil.example`` or ``https:`` would
    otherwise make a redirect leave the site. Percent-encoding turns a backslash
    into ``%5C``; one leading slash, and ``%2F`` for any slash straight after it,
    leave nothing for a browser to read as a host or a scheme (as Django's
    ``escape_leading_slashes`` does for its own redirects).
    """
    quoted = urllib.parse.quote(path, safe=PATH_SAFE)
    rest = quoted.lstrip("/")
    more_slashes = max(len(quoted) - len(rest) - 1, 0)
    return "/" + "%2F" * more_slashes + rest


#: The deepest zoom served: a deeper one names no tile (404, see ``TileGrid``);
#: TileStache would build cache paths too long for the filesystem from it, or a
#: provider would work on it for ages.
MAX_ZOOM = 32

#: Exceptions that mean the layer's upstream source failed, answered 502.
UPSTREAM_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)


@dataclass
class TileResponse:
    """Status, content type, body and any further headers of one answer."""

    status: int
    content_type: str
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    def http_headers(self) -> list[tuple[str, str]]:
        """Every header of the answer, in the order sent: the one place they are set.

        ``Content-Length`` is the GET body's length, so a HEAD answer (an
        empty body) carries the GET's headers, as TileStache's server does.
        """
        return [
            ("Content-Type", self.content_type),
            *self.headers,
            ("Content-Length", str(len(self.body))),
        ]


def text_response(status: int, text: str) -> TileResponse:
    return TileResponse(status, "text/plain; charset=utf-8", (text + "\n").encode("utf-8"))


def not_allowed(allowed: tuple[str, ...]) -> TileResponse:
    """The 405 answer for a method other than ``allowed``."""
    response = text_response(405, f"Method not allowed: tiles answer {' and '.join(allowed)}.")
    response.headers.append(("Allow", ", ".join(allowed)))
    return response


def _as_bytes(content: Any) -> bytes:
    if content is None:
        return b""
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


def iri_to_uri(iri: str) -> str:
    """Percent-encode what a header cannot carry, as Django's ``iri_to_uri`` does."""
    return urllib.parse.quote(iri, safe="/#%[]=:;$&()+,!?*@'~")


@functools.lru_cache(maxsize=64)
def http_date(seconds: int) -> str:
    """An HTTP date for a whole unix time; cached, as most tiles of one second share it."""
    return email.utils.formatdate(seconds, usegmt=True)


def error_response(exc: BaseException) -> TileResponse:
    """A short answer for an exception raised while rendering (no traceback)."""
    if isinstance(exc, UPSTREAM_ERRORS):
        return text_response(502, "Bad gateway: the layer's upstream source failed.")
    return text_response(500, "Server error: the tile could not be rendered.")


@dataclass(frozen=True)
class TileGrid:
    """Which tiles a layer has: its zooms, and its columns and rows at zoom 0.

    A coordinate outside them names no tile, and is answered 404 before the cache or
    the provider sees it: otherwise any client could make the server render, and the
    cache store, tiles without end (``/demo/0/-4258557161/1049203985.png``).
    """

    min_zoom: int
    max_zoom: int
    #: Columns and rows at zoom 0: 1 by 1 in spherical mercator, 2 by 1 in WGS84.
    columns: int
    rows: int

    def has(self, coord: Any) -> bool:
        zoom = int(coord.zoom)
        if not self.min_zoom <= zoom <= self.max_zoom:
            return False
        return 0 <= int(coord.column) < self.columns << zoom and 0 <= int(coord.row) < (
            self.rows << zoom
        )


def tile_grid(layer: Any) -> TileGrid:
    """The ``TileGrid`` of a TileStache layer: its ``bounds`` zooms, if set, and its
    projection's extent."""
    min_zoom, max_zoom = 0, MAX_ZOOM
    bounds = getattr(layer, "bounds", None)
    if bounds:
        parts = getattr(bounds, "bounds", [bounds])  # a BoundsList, or one Bounds
        min_zoom = max(0, min(int(part.lower_right_low.zoom) for part in parts))
        max_zoom = min(MAX_ZOOM, max(int(part.upper_left_high.zoom) for part in parts))
    columns = rows = 1
    try:
        location = import_tilestache().Geography.Location
        corner = layer.projection.locationCoordinate(location(-85.0511287798, 180.0)).zoomTo(0)
        columns, rows = max(1, round(corner.column)), max(1, round(corner.row))
    except Exception:  # noqa: BLE001 - a projection of its own: the usual grid
        pass
    return TileGrid(min_zoom, max_zoom, columns, rows)


class TileServer:
    """Answers paths like ``/layer/z/x/y.ext`` from one TileStache configuration."""

    def __init__(self, configuration: Any):
        self.configuration = configuration
        self._ts = import_tilestache()
        self._known_unknown = self._ts.Core.KnownUnknown
        self._tile_path = self._ts._pathinfo_pat
        self._coordinate = self._ts.Core.Coordinate
        #: Each layer's ``TileGrid``, worked out at its first request.
        self._grids: dict[str, TileGrid] = {}

    def handle(self, path: str, query_string: str = "", script_name: str = "") -> TileResponse:
        """Answer ``path`` (relative to the tile URLs' root); provider errors propagate."""
        path = "/" + path.lstrip("/")
        config = self.configuration
        if path == "/":
            mimetype, content = getattr(config, "index", ("text/plain", "TileStache says hello."))
            return TileResponse(200, mimetype, _as_bytes(content))
        if path == "/favicon.ico":
            return text_response(404, "Not found.")
        tile = self._tile_path.match(path)
        try:
            if tile is not None:  # the common case, parsed once with TileStache's own pattern
                name, zoom, column, row, extension = tile.group("l", "z", "x", "y", "e")
                coord = self._coordinate(int(row), int(column), int(zoom))
            else:
                name, coord, extension = self._ts.splitPathInfo(path)
        except (self._known_unknown, ValueError):  # ValueError: too many digits for int()
            return text_response(
                400, "Bad path: expected /<layer>/<z>/<x>/<y>.<extension> or /<layer>/preview.html."
            )
        layer = config.layers.get(name)
        if layer is None:
            return text_response(404, "Unknown layer.")
        if coord is not None and not self._grid(name, layer).has(coord):
            return text_response(404, "No such tile: outside the layer's zooms or extent.")
        if extension == "html" and coord is None:
            response = TileResponse(200, "text/html", _as_bytes(self._ts.Core._preview(layer)))
        elif extension.lower() in layer.redirects:
            return self._redirect(layer, coord, extension, query_string, script_name)
        else:
            try:
                status, headers, body = layer.getTileResponse(coord, extension)
            except self._known_unknown:
                return text_response(400, "Unknown extension for this layer.")
            except TileNotFoundError:  # e.g. an MBTiles file without this tile
                return text_response(404, "No such tile in this layer.")
            extra = [(k, v) for k, v in headers.items() if k.lower() != "content-type"]
            content_type = headers.get("Content-Type") or "application/octet-stream"
            response = TileResponse(status, content_type, _as_bytes(body), extra)
        return self._decorate(layer, response, query_string)

    def seed(
        self, name: str, coord: tuple[int, int, int], extension: str, ignore_cached: bool
    ) -> TileResponse:
        """Render (or read) one tile of layer ``name`` for a seeding job, through
        ``Layer.getTileResponse`` as ``handle`` does, so the cache, its lock and the
        metatile apply; ``ignore_cached`` renders even a cached tile. Provider errors
        propagate."""
        layer = self.configuration.layers[name]
        zoom, column, row = coord
        try:
            status, headers, body = layer.getTileResponse(
                self._coordinate(row, column, zoom), extension, ignore_cached
            )
        except TileNotFoundError:
            return text_response(404, "No such tile in this layer.")
        content_type = headers.get("Content-Type") or "application/octet-stream"
        return TileResponse(status, content_type, _as_bytes(body))

    def _grid(self, name: str, layer: Any) -> TileGrid:
        grid = self._grids.get(name)
        if grid is None:
            grid = self._grids[name] = tile_grid(layer)
        return grid

    def _redirect(
        self, layer: Any, coord: Any, extension: str, query_string: str, script_name: str
    ) -> TileResponse:
        other = layer.redirects[extension.lower()]
        location = site_path(script_name + self._ts.mergePathInfo(layer.name(), coord, other))
        if query_string:
            location += "?" + query_string
        location = iri_to_uri(location)
        body = f"You are being redirected to {location}\n".encode()
        return TileResponse(302, "text/plain", body, [("Location", location)])

    def _decorate(self, layer: Any, response: TileResponse, query_string: str) -> TileResponse:
        """Add JSONP, the allowed origin and cache lifetime, as requestHandler2 does."""
        headers = response.headers
        names = {name.lower() for name, _ in headers} if headers else set()
        if layer.allowed_origin and "access-control-allow-origin" not in names:
            headers.append(("Access-Control-Allow-Origin", layer.allowed_origin))
        if query_string and "json" in response.content_type:
            callback = urllib.parse.parse_qs(query_string).get("callback", [None])[0]
            if callback is not None:
                if len(callback) > MAX_CALLBACK_LENGTH or not CALLBACK_PATTERN.fullmatch(callback):
                    return text_response(400, "Bad callback: expected a JavaScript identifier.")
                response.content_type = "application/javascript; charset=utf-8"
                response.body = callback.encode("ascii") + b"(" + response.body + b")"
        if layer.max_cache_age is not None:
            age = int(layer.max_cache_age)
            if "expires" not in names:
                headers.append(("Expires", http_date(int(time.time()) + age)))
            if "cache-control" not in names:
                headers.append(("Cache-Control", f"public, max-age={age}"))
        return response


def load_server(source: Any) -> TileServer:
    """Build a tile server, from a config path or dict, whose cache records lock events."""
    configuration = build_configuration(source)
    configuration.cache = InstrumentedCache(configuration.cache)
    return TileServer(configuration)
