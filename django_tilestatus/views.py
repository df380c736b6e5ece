"""The tile view: TileStache behind a catch-all URL, recording and counting each request."""

from __future__ import annotations

import logging
import time

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.encoding import iri_to_uri
from django.views.decorators.csrf import csrf_exempt

from . import events, runtime, stats, tiles
from .recorder import Recorder

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("GET", "HEAD")


def _http_response(result: tiles.TileResponse, head: bool) -> HttpResponse:
    """The one place a tile answer's headers are set.

    A HEAD answer keeps the GET's headers, Content-Length included, with an
    empty body: gunicorn sends whatever body it is given.
    """
    response = HttpResponse(
        b"" if head else result.body, status=result.status, content_type=result.content_type
    )
    for name, value in result.headers:
        response[name] = iri_to_uri(value) if name.lower() == "location" else value
    response["Content-Length"] = str(len(result.body))
    return response


def _count(recorder: Recorder, path: str, status: int, seconds: float) -> None:
    """Add the request to the process's statistics (memory only; see ``stats``)."""
    from_cache, lock_wait = stats.request_noted()
    layer, zoom = stats.tile_of(path, runtime.layer_names(), tiles.MAX_ZOOM)
    outcome = stats.outcome_of(status, from_cache)
    recorder.stats.count(layer, zoom, outcome, seconds, lock_wait, path)


def _script_name(request: HttpRequest, path: str) -> str:
    """The URL prefix the tile URLs are mounted under, for redirects."""
    full = request.path
    prefix = full[: len(full) - len(path)] if path and full.endswith(path) else full
    return prefix.rstrip("/")


@csrf_exempt  # GET and HEAD only; without this a POST would get 403, not 405.
@login_not_required  # tiles are public even under LoginRequiredMiddleware
def tile(request: HttpRequest, path: str = "") -> HttpResponse:
    """Answer a tile path under the include, recording Started/Finished/Error."""
    recorder = events.active()
    label = events.path_label(path) if recorder is not None else ""
    start = time.perf_counter()
    if recorder is not None:
        events.started(recorder, label)
        stats.request_began()
    head = request.method == "HEAD"
    try:
        if request.method not in ALLOWED_METHODS:
            response: HttpResponse = HttpResponseNotAllowed(ALLOWED_METHODS)
        else:
            result = runtime.get_server().handle(
                path, request.META.get("QUERY_STRING", ""), _script_name(request, path)
            )
            response = _http_response(result, head)
    except Exception as exc:  # answered briefly, logged in full
        elapsed = time.perf_counter() - start
        failed = tiles.error_response(exc)
        if recorder is not None:
            events.error(recorder, exc, elapsed)
            _count(recorder, label, failed.status, elapsed)
        logger.exception(
            "Tile request %s failed after %.3f seconds", events.path_label(path), elapsed
        )
        return _http_response(failed, head)
    if recorder is not None:
        elapsed = time.perf_counter() - start
        events.finished(recorder, label, elapsed)
        _count(recorder, label, response.status_code, elapsed)
    return response
