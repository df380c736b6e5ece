"""The tile view: TileStache behind a catch-all URL, recording and counting each request.

``answer`` is everything a tile request does (recording, statistics, the
answer, errors, 405) and touches no Django object, so the fast path
(``fastpath.py``) serves a tile by calling it too; ``tile`` only adapts a
Django request to it and its answer to an ``HttpResponse``.
"""

from __future__ import annotations

import logging
import time

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import events, runtime, tiles

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("GET", "HEAD")


def answer(method: str, path: str, query_string: str, script_name: str) -> tiles.TileResponse:
    """Answer one tile request, recording Started/Finished/Error and noting what its
    statistics need (counted by the recorder's writer); never raises ``Exception``.

    ``path`` is under the tile URLs' root, ``script_name`` the URL prefix they
    are mounted under (for redirects). The body is the GET's even for HEAD:
    the HTTP adapters leave it out, after ``Content-Length`` is taken from it.
    The request is one in-flight entry of its process until it ends; an
    exception that is not an ``Exception`` (gunicorn's timeout, Ctrl-C) is
    recorded as an ``Error`` and goes on.
    """
    recorder = events.active()
    start = time.perf_counter()
    entry = None
    if recorder is not None:
        entry = events.started(recorder, events.path_label(path))
    try:
        if method not in ALLOWED_METHODS:
            result = tiles.not_allowed(ALLOWED_METHODS)
        else:
            result = runtime.get_server().handle(path, query_string, script_name)
    except Exception as exc:  # answered briefly, logged in full
        elapsed = time.perf_counter() - start
        failed = tiles.error_response(exc)
        if recorder is not None and entry is not None:
            events.error(recorder, entry, exc, elapsed, failed.status)
        logger.exception(
            "Tile request %s failed after %.3f seconds", events.path_label(path), elapsed
        )
        return failed
    except BaseException as exc:
        if recorder is not None and entry is not None:
            events.aborted(recorder, entry, exc, time.perf_counter() - start)
        raise
    if recorder is not None and entry is not None:
        events.finished(recorder, entry, time.perf_counter() - start, result.status)
    return result


def http_response(result: tiles.TileResponse, head: bool) -> HttpResponse:
    """The answer as an ``HttpResponse``; a HEAD answer has the GET's headers, no body."""
    response = HttpResponse(b"" if head else result.body, status=result.status)
    for name, value in result.http_headers():
        response[name] = value
    return response


def script_name(full_path: str, path: str) -> str:
    """The URL prefix the tile URLs are mounted under (for redirects), from the request's
    full path (script name included) and the path under the include."""
    prefix = (
        full_path[: len(full_path) - len(path)] if path and full_path.endswith(path) else full_path
    )
    return prefix.rstrip("/")


@csrf_exempt  # GET and HEAD only; without this a POST would get 403, not 405.
@login_not_required  # tiles are public even under LoginRequiredMiddleware
def tile(request: HttpRequest, path: str = "") -> HttpResponse:
    """Answer a tile path under the include (see ``answer``)."""
    result = answer(
        request.method or "GET",
        path,
        request.META.get("QUERY_STRING", ""),
        script_name(request.path, path),
    )
    return http_response(result, request.method == "HEAD")
