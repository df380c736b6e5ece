"""The staff-only status page: one report, as HTML (default), JSON or plain text.

Adapter: reads with ``reading.current``, renders the ``Report`` it computed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from .. import conf
from ..reading.current import current_report
from ..reading.report import Report
from ..recording.vocabulary import nice_time
from ..seeding.report import recent_jobs, seeding_dicts, text_lines
from ..storage import StoreUnavailable
from .http import log_unavailable, text_response, unavailable_text, without_body_for_head

logger = logging.getLogger(__name__)

#: Seconds between the page's refreshes from the JSON format.
REFRESH_SECONDS = 3
UNAVAILABLE = unavailable_text("Tile status is")


#: Longest ``?host=`` taken; a longer one names no host.
MAX_HOST_LENGTH = 255


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


def _seconds_text(seconds: float) -> str:
    """``BUSY_AFTER`` as the page words it: "10 s", "0.5 s"."""
    return f"{seconds:g} s"


def _html(request: HttpRequest, report: Report) -> HttpResponse:
    config = conf.get_config()
    query = {"format": "json", **({"host": report.host} if report.host else {})}
    if "stacks" in request.GET:  # valid: checked before the read
        query["stacks"] = request.GET["stacks"]
    context = {
        **admin.site.each_context(request),
        "title": "Tile status",
        "report": report,
        "json_url": reverse("tilestatus:status") + "?" + urlencode(query),
        "refresh_ms": REFRESH_SECONDS * 1000,
        "hide_after": nice_time(config.hide_after),
        "busy_after": _seconds_text(config.busy_after),
        "seeding": seeding_dicts(recent_jobs()),
    }
    return render(request, "django_tilestatus/status.html", context)


def _json(request: HttpRequest, report: Report) -> HttpResponse:
    # Strict JSON: a non-finite number is a bug to see, not ``NaN`` for a parser to reject.
    value = {**report.as_dict(), "seeding": seeding_dicts(recent_jobs())}
    return JsonResponse(value, json_dumps_params={"allow_nan": False})


def parse_process(value: str) -> tuple[str, int] | None:
    """``(host, pid)`` from ``<host>:<pid>`` (the host may hold ":"), or None."""
    host, colon, pid = value.rpartition(":")
    if not (colon and host and pid.isascii() and pid.isdigit() and len(pid) <= 10):
        return None
    return host, int(pid)


def _text(request: HttpRequest, report: Report) -> HttpResponse:
    seeding = text_lines(recent_jobs())
    return text_response(report.as_text() + ("\n\n" + "\n".join(seeding) if seeding else ""))


RENDERERS = {"html": _html, "json": _json, "text": _text}


def _unavailable(request: HttpRequest, fmt: str) -> HttpResponse:
    """503 in the format asked for; nothing about the connection (no URL, no password)."""
    if fmt == "json":
        return JsonResponse({"error": UNAVAILABLE}, status=503)
    if fmt == "text":
        return text_response(UNAVAILABLE, status=503)
    context = {**admin.site.each_context(request), "title": "Tile status", "error": UNAVAILABLE}
    return render(request, "django_tilestatus/unavailable.html", context, status=503)


@csrf_exempt  # GET and HEAD only; a staff POST gets 405, not CSRF's 403.
@require_safe
def _status_page(request: HttpRequest) -> HttpResponse:
    fmt = request.GET.get("format", "html")
    if fmt not in RENDERERS:
        return text_response(
            "Unknown format: use ?format=html, ?format=json or ?format=text.", status=400
        )
    host = request.GET.get("host") or None
    if host is not None and len(host) > MAX_HOST_LENGTH:
        return text_response("Bad host: too long.", status=400)
    stacks = request.GET.get("stacks")
    process = None
    if stacks is not None:
        process = parse_process(stacks) if len(stacks) <= MAX_HOST_LENGTH + 11 else None
        if process is None:
            return text_response("Bad stacks: use ?stacks=<host>:<pid>.", status=400)
    try:
        report = current_report(host, stacks_of=process)
    except StoreUnavailable as exc:
        log_unavailable(logger, "Tile status page", exc)
        response = _unavailable(request, fmt)
    else:
        response = RENDERERS[fmt](request, report)
    return without_body_for_head(request, response)


@csrf_exempt
@_nosniff
def status(request: HttpRequest) -> HttpResponse:
    """The status page, guarded exactly as the admin guards its own pages.

    ``admin.site.admin_view`` redirects whoever the admin site refuses
    (anonymous, inactive, non-staff; or a project's own ``has_permission``)
    to the admin login with ``next``, and marks every answer never-cached.
    """
    return admin.site.admin_view(_status_page)(request)
