"""The Prometheus metrics endpoint: cluster-wide figures for a scraper or a staff member.

Adapter: checks who asks, reads the status report (``reading.current``) and the
cumulative statistics, and renders with ``reading.metrics``. A request is let in with
``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time) or a
session the admin site accepts; anything else gets 401 (no credentials) or
403 (a wrong token, a user who is not staff) and no figures. Answers are never cached.
"""

from __future__ import annotations

import hmac
import logging

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from .. import conf
from ..reading.current import current_report
from ..reading.metrics import exposition
from ..runtime import get_store
from ..seeding.report import recent_jobs
from ..storage import StoreUnavailable
from .http import body_to_send, log_unavailable, text_response, unavailable_text

logger = logging.getLogger(__name__)

UNAVAILABLE = unavailable_text("Tile metrics are")


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the request may see the metrics, else the answer refusing it."""
    token = conf.get_config().metrics_token
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer"
    if bearer and token and hmac.compare_digest(credentials.strip().encode(), token.encode()):
        return None
    user = getattr(request, "user", None)
    if user is not None and admin.site.has_permission(request):
        return None
    if bearer or (user is not None and user.is_authenticated):
        return text_response("Forbidden: a wrong token, or a user who is not staff.", status=403)
    response = text_response(
        "Unauthorized: send Authorization: Bearer <METRICS_TOKEN> or log in as staff.", status=401
    )
    response["WWW-Authenticate"] = 'Bearer realm="tilestatus"'
    return response


def _metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    try:
        report = current_report(tiles=False)
        totals = get_store().stat_totals()
    except StoreUnavailable as exc:
        log_unavailable(logger, "Tile metrics", exc)
        return text_response(UNAVAILABLE, status=503)
    accept = request.headers.get("Accept", "")
    body, content_type = exposition(totals, report, accept, recent_jobs())
    response = HttpResponse(body_to_send(request.method or "GET", body), content_type=content_type)
    response["Content-Length"] = str(len(body))
    return response


@csrf_exempt  # GET and HEAD only; a POST gets 405, not CSRF's 403.
@login_not_required  # a scraper has no session: the view checks its token itself
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics in the Prometheus text format, or OpenMetrics when ``Accept`` asks."""
    response = _metrics(request)
    add_never_cache_headers(response)
    response.setdefault("X-Content-Type-Options", "nosniff")
    return response
