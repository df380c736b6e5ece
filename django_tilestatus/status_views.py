"""The staff-only status page: one report, as HTML (default), JSON or plain text.

Adapter: reads the store through ``runtime``, computes with ``report``, renders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from . import conf
from .recorder import existing_recorder
from .report import Report, ReportSettings, build_report
from .runtime import get_store
from .store import StoreUnavailable
from .tile_stats import MINUTES, build_tiles
from .vocabulary import nice_time

logger = logging.getLogger(__name__)

FORMATS = ("html", "json", "text")
#: Seconds between the page's refreshes from the JSON format.
REFRESH_SECONDS = 3
TEXT = "text/plain; charset=utf-8"
UNAVAILABLE = "Tile status is unavailable: Redis cannot be reached. Tiles are still served."


#: Longest ``?host=`` taken; a longer one names no host.
MAX_HOST_LENGTH = 255


def current_report(host: str | None = None, tiles: bool = True) -> Report:
    """Read the statuses and build the report, deleting long-silent dead processes.

    The read is bounded (see ``StatusStore.snapshot``); the deletions are
    best effort, so a read-only replica still serves the page. With ``tiles``
    the report carries the Tiles section (one more round trip). Raises
    ``StoreUnavailable`` when the store cannot be reached.
    """
    config = conf.get_config()
    current = existing_recorder()
    if current is not None:
        current.flush(timeout=1.0)
    settings = ReportSettings(
        this_host=config.host,
        hide_after=config.hide_after,
        purge_after=config.purge_after,
        busy_after=config.busy_after,
        messages=config.messages,
    )
    store = get_store()
    snapshot = store.snapshot(time.time(), recent=config.messages, host=host)
    report, purge = build_report(snapshot, settings, read_heads=store.heads)
    if purge:
        store.delete_quietly(purge)
    if not tiles:
        return replace(report, host=host)
    tile_root = reverse("tilestatus:tile").rstrip("/")
    section = build_tiles(store.stat_minutes(snapshot.now, MINUTES), snapshot.now, tile_root)
    return replace(report, host=host, tiles=section)


def _nosniff(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Every answer, redirects and errors included, is taken as the type it says.

    Messages hold user input; SecurityMiddleware may not be installed.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return wrapped


def _without_body_for_head(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """HEAD gets the GET's headers and no body (gunicorn sends what it is given)."""
    if request.method == "HEAD":
        length = len(response.content)
        response.content = b""
        response["Content-Length"] = str(length)
    return response


def _seconds_text(seconds: float) -> str:
    """``BUSY_AFTER`` as the page words it: "10 s", "0.5 s"."""
    return f"{seconds:g} s"


def _html(request: HttpRequest, report: Report) -> HttpResponse:
    config = conf.get_config()
    query = {"format": "json", **({"host": report.host} if report.host else {})}
    context = {
        **admin.site.each_context(request),
        "title": "Tile status",
        "report": report,
        "json_url": reverse("tilestatus:status") + "?" + urlencode(query),
        "refresh_ms": REFRESH_SECONDS * 1000,
        "hide_after": nice_time(config.hide_after),
        "busy_after": _seconds_text(config.busy_after),
    }
    return render(request, "django_tilestatus/status.html", context)


def _json(request: HttpRequest, report: Report) -> HttpResponse:
    # Strict JSON: a non-finite number is a bug to see, not ``NaN`` for a parser to reject.
    return JsonResponse(report.as_dict(), json_dumps_params={"allow_nan": False})


def _text(request: HttpRequest, report: Report) -> HttpResponse:
    return HttpResponse(report.as_text(), content_type=TEXT)


RENDERERS = {"html": _html, "json": _json, "text": _text}


def _unavailable(request: HttpRequest, fmt: str) -> HttpResponse:
    """503 in the format asked for; nothing about the connection (no URL, no password)."""
    if fmt == "json":
        return JsonResponse({"error": UNAVAILABLE}, status=503)
    if fmt == "text":
        return HttpResponse(UNAVAILABLE + "\n", status=503, content_type=TEXT)
    context = {**admin.site.each_context(request), "title": "Tile status", "error": UNAVAILABLE}
    return render(request, "django_tilestatus/unavailable.html", context, status=503)


@csrf_exempt  # GET and HEAD only; a staff POST gets 405, not CSRF's 403.
@require_safe
def _status_page(request: HttpRequest) -> HttpResponse:
    fmt = request.GET.get("format", "html")
    if fmt not in FORMATS:
        return HttpResponseBadRequest(
            "Unknown format: use ?format=html, ?format=json or ?format=text.\n", content_type=TEXT
        )
    host = request.GET.get("host") or None
    if host is not None and len(host) > MAX_HOST_LENGTH:
        return HttpResponseBadRequest("Bad host: too long.\n", content_type=TEXT)
    try:
        report = current_report(host)
    except StoreUnavailable as exc:
        cause = type(exc.__cause__ or exc).__name__  # no address or password in the log
        logger.warning("Tile status page: Redis cannot be reached (%s).", cause)
        response = _unavailable(request, fmt)
    else:
        response = RENDERERS[fmt](request, report)
    return _without_body_for_head(request, response)


@csrf_exempt
@_nosniff
def status(request: HttpRequest) -> HttpResponse:
    """The status page, guarded exactly as the admin guards its own pages.

    ``admin.site.admin_view`` redirects whoever the admin site refuses
    (anonymous, inactive, non-staff; or a project's own ``has_permission``)
    to the admin login with ``next``, and marks every answer never-cached.
    """
    return admin.site.admin_view(_status_page)(request)
