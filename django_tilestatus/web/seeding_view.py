"""Cancelling a seeding job from the status page: a staff POST (CSRF-checked)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..seeding.running import job_store
from .http import text_response


@require_POST
def _cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    store = job_store()
    if store.get(job_id) is None:
        return text_response("Unknown seeding job.", status=404)
    store.cancel(job_id)
    return HttpResponseRedirect(reverse("tilestatus:status") + "#tilestatus-seeding")


def cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    """Cancel job ``job_id``: its workers stop after their metatile. Staff only, as the
    admin guards its own pages; the admin view's CSRF check applies."""
    return admin.site.admin_view(_cancel)(request, job_id)
