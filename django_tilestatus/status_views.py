"""The staff-only status page: one report, as HTML (default), JSON or plain text."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from . import conf, connection, liveness
from .report import Report, ReportSettings, build_report
from .status import get_recent, get_store, nice_time

logger = logging.getLogger(__name__)

FORMATS = ("html", "json", "text")
#: Seconds between the page's refreshes from the JSON format.
REFRESH_SECONDS = 3
TEXT = "text/plain; charset=utf-8"
UNAVAILABLE = "Tile status is unavailable: Redis cannot be reached. Tiles are still served."


def current_report() -> Report:
    """Read the statuses and build the report, deleting long-silent dead processes.

    Raises one of ``connection.ERRORS`` when Redis cannot be reached.
    """
    config = conf.get_config()
    now = time.time()
    processes, messages = get_recent(now=now)
    settings = ReportSettings(
        this_host=config.host,
        hide_after=config.hide_after,
        purge_after=config.purge_after,
        busy_after=config.busy_after,
        messages=config.messages,
    )
    report, purge = build_report(processes, messages, settings, liveness.why_dead, now)
    if purge:
        get_store().delete(purge)
    return report


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


def _html(request: HttpRequest, report: Report) -> HttpResponse:
    config = conf.get_config()
    context = {
        **admin.site.each_context(request),
        "title": "Tile status",
        "report": report,
        "read_at": datetime.fromtimestamp(report.now, tz=timezone.utc),
        "json_url": reverse("tilestatus:status") + "?format=json",
        "refresh_ms": REFRESH_SECONDS * 1000,
        "busy_after": config.busy_after,
        "hide_after": nice_time(config.hide_after),
    }
    return render(request, "django_tilestatus/status.html", context)


def _json(request: HttpRequest, report: Report) -> HttpResponse:
    return JsonResponse(report.as_dict())


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
    try:
        report = current_report()
    except connection.ERRORS as exc:
        logger.warning("Tile status page: Redis cannot be reached (%s).", type(exc).__name__)
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
