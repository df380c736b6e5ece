"""Helpers for the provider and cache tests: optional modules, MBTiles files, an HTTP upstream.

Nothing here touches the network beyond loopback: the upstream binds 127.0.0.1
on a free port, and every wait on it is bounded.
"""

from __future__ import annotations

import http.server
import io
import sqlite3
import threading
import types
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from django_tilestatus.serving.tile_server import TileServer, load_server

from .real_redis import IN_CI


def require_module(name: str, extra: str) -> types.ModuleType:
    """Import ``name``, or skip the test module: fail instead under ``CI=true``."""
    try:
        return __import__(name)
    except ImportError as exc:
        message = f"{name} is not installed (pip install 'django-tilestatus[{extra}]'): {exc}"
        if IN_CI:
            pytest.fail(message + " (CI must run these tests)", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def server_for(layers: Mapping[str, Any], cache: Mapping[str, Any] | None = None) -> TileServer:
    """The app's tile server for a TileStache config of ``layers`` (Test cache by default)."""
    return load_server({"cache": dict(cache or {"name": "Test"}), "layers": dict(layers)})


def png(color: str | tuple[int, ...], size: int = 256, mode: str = "RGB") -> bytes:
    return encode(Image.new(mode, (size, size), color), "PNG")


def encode(image: Image.Image, format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format)
    return out.getvalue()


def decode(body: bytes) -> Image.Image:
    return Image.open(io.BytesIO(body)).convert("RGBA")


# -- MBTiles -------------------------------------------------------------------


def make_mbtiles(path: Path, format: str, tiles: Mapping[tuple[int, int, int], bytes]) -> Path:
    """Write an MBTiles 1.1 file; ``tiles`` maps XYZ ``(z, x, y)`` to the tile's bytes."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,"
            " tile_data BLOB)"
        )
        db.executemany(
            "INSERT INTO metadata VALUES (?, ?)",
            [("name", path.stem), ("type", "baselayer"), ("version", "1"), ("format", format)],
        )
        db.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, 2**z - 1 - y, body) for (z, x, y), body in tiles.items()],  # TMS rows
        )
    return path


def read_mbtiles(path: Path) -> dict[tuple[int, int, int], bytes]:
    """The tiles of an MBTiles file, as XYZ ``(z, x, y)`` to bytes."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")
        return {(z, x, 2**z - 1 - row): bytes(data) for z, x, row, data in rows}


# -- a local HTTP upstream -----------------------------------------------------


class Upstream:
    """A loopback HTTP server answering from ``routes`` (path to PNG bytes).

    Any other path answers 404; a path under ``/hang/`` never answers, and its
    connection is closed when the test ends (or after ``hang_limit`` seconds). ``requests``
    lists the paths asked for.
    """

    def __init__(self, routes: Mapping[str, bytes], hang_limit: float = 30.0):
        self.routes = dict(routes)
        self.requests: list[str] = []
        self.release = threading.Event()
        self.hang_limit = hang_limit
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.requests.append(self.path)
                if self.path.startswith("/hang/"):
                    upstream.release.wait(upstream.hang_limit)
                    return  # the client gave up long ago: close without an answer
                body = upstream.routes.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@contextmanager
def upstream(routes: Mapping[str, bytes]) -> Iterator[Upstream]:
    with Upstream(routes) as server:
        yield server
