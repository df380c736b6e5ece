"""The tile view: TileStache behind a catch-all URL, recording and counting each request.

``serving.answer`` does the work on no Django object; this adapter only turns a
Django request into its arguments and its answer into an ``HttpResponse``.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .. import runtime
from ..serving.answer import answer
from ..serving.tile_server import TileResponse
from .http import body_to_send


def tile_answer(method: str, path: str, query_string: str, script_name: str) -> TileResponse:
    """``serving.answer`` with the process's tile server for the settings in force."""
    return answer(method, path, query_string, script_name, runtime.get_server)


def http_response(result: TileResponse, method: str) -> HttpResponse:
    """The answer as an ``HttpResponse``; a HEAD answer has the GET's headers, no body."""
    response = HttpResponse(body_to_send(method, result.body), status=result.status)
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
    """Answer a tile path under the include (see ``serving.answer``)."""
    result = tile_answer(
        request.method or "GET",
        path,
        request.META.get("QUERY_STRING", ""),
        script_name(request.path, path),
    )
    return http_response(result, request.method or "GET")
