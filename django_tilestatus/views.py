"""The tile view: TileStache behind a catch-all URL, recording each request."""

from __future__ import annotations

import logging
import time

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.encoding import iri_to_uri
from django.views.decorators.csrf import csrf_exempt

from . import events, runtime, tiles

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


def _script_name(request: HttpRequest, path: str) -> str:
    """The URL prefix the tile URLs are mounted under, for redirects."""
    full = request.path
    prefix = full[: len(full) - len(path)] if path and full.endswith(path) else full
    return prefix.rstrip("/")


@csrf_exempt  # GET and HEAD only; without this a POST would get 403, not 405.
@login_not_required  # tiles are public even under LoginRequiredMiddleware
def tile(request: HttpRequest, path: str = "") -> HttpResponse:
    """Answer a tile path under the include, recording Started/Finished/Error.

    The request is one in-flight entry of its process until it ends; an
    exception that is not an ``Exception`` (gunicorn's timeout, Ctrl-C) is
    recorded as an ``Error`` and goes on.
    """
    recorder = events.active()
    start = time.perf_counter()
    entry = events.started(recorder, events.path_label(path)) if recorder is not None else None
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
        if recorder is not None and entry is not None:
            events.error(recorder, entry, exc, elapsed)
        logger.exception(
            "Tile request %s failed after %.3f seconds", events.path_label(path), elapsed
        )
        return _http_response(tiles.error_response(exc), head)
    except BaseException as exc:
        if recorder is not None and entry is not None:
            events.aborted(recorder, entry, exc, time.perf_counter() - start)
        raise
    if recorder is not None and entry is not None:
        events.finished(recorder, entry, time.perf_counter() - start)
    return response
