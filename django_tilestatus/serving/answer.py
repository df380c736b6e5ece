"""One tile request, answered and recorded, on no Django object.

``answer`` is everything a tile request does (recording, statistics, the
answer, errors, 405). The tile view (``web.tile_view``) and the fast path
(``web.fastpath``) both call it, so whatever a tile request does belongs here
and both ways serve it the same.

Core module: imports the standard library, ``recording`` and ``tile_server`` only;
the tile server comes from the caller's ``get_server`` (the Django adapter builds
it from the settings).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..recording.recorder import active
from ..recording.vocabulary import path_label
from ..statistics.counting import SEED
from . import tile_server
from .tile_server import TileResponse, TileServer

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("GET", "HEAD")


def answer(
    method: str,
    path: str,
    query_string: str,
    script_name: str,
    get_server: Callable[[], TileServer],
) -> TileResponse:
    """Answer one tile request, recording Started/Finished/Error and noting what its
    statistics need (counted by the recorder's writer); never raises ``Exception``.

    ``path`` is under the tile URLs' root, ``script_name`` the URL prefix they
    are mounted under (for redirects). The body is the GET's even for HEAD:
    the HTTP adapters leave it out, after ``Content-Length`` is taken from it.
    """
    if method not in ALLOWED_METHODS:
        return recorded(path_label(path), lambda: tile_server.not_allowed(ALLOWED_METHODS))
    return recorded(path_label(path), lambda: get_server().handle(path, query_string, script_name))


def seed_tile(
    layer: str,
    coord: tuple[int, int, int],
    extension: str,
    ignore_cached: bool,
    get_server: Callable[[], TileServer],
) -> TileResponse:
    """Render one tile of a seeding job as a request would be: recorded (``Started`` and
    ``Finished`` in the process's messages, an in-flight entry with its phases), through
    the layer and the wrapped cache (its lock included), and counted apart from traffic
    (``source`` ``"seed"``: ``SeedCount``). ``coord`` is ``(zoom, column, row)``;
    ``ignore_cached`` renders even a cached tile (a stale one). Never raises
    ``Exception``: a failure is answered 500 (or 502), with the error as its body, and
    recorded, as for a request.
    """
    zoom, column, row = coord
    label = path_label(f"{layer}/{zoom}/{column}/{row}.{extension}")
    return recorded(label, lambda: get_server().seed(layer, coord, extension, ignore_cached), SEED)


def recorded(label: str, work: Callable[[], TileResponse], source: str = "") -> TileResponse:
    """``work()``'s answer, the request recorded around it: one in-flight entry of its
    process until it ends, then ``Finished``, or ``Error`` for an exception (answered
    briefly, logged in full; never raised). An exception that is not an ``Exception``
    (gunicorn's timeout, Ctrl-C) is recorded as an ``Error`` and goes on."""
    recorder = active()
    start = time.perf_counter()
    entry = None
    if recorder is not None:
        entry = recorder.begin_request(label, start)
        if source:
            entry.source = source
    try:
        result = work()
    except Exception as exc:  # answered briefly, logged in full
        elapsed = time.perf_counter() - start
        failed = tile_server.error_response(exc)
        if source:  # a seeding job shows the error itself
            failed.body = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
        if recorder is not None and entry is not None:
            recorder.fail_request(entry, exc, elapsed, failed.status)
        logger.exception("Tile request %s failed after %.3f seconds", label, elapsed)
        return failed
    except BaseException as exc:
        if recorder is not None and entry is not None:
            recorder.abort_request(entry, exc, time.perf_counter() - start)
        raise
    if recorder is not None and entry is not None:
        end = time.perf_counter()
        recorder.finish_request(entry, end - start, result.status, end)
    return result
