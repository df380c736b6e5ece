"""The app under another prefix, its patterns led by a view of the project's own under the
same namespace (as a metrics endpoint is): the fast path must leave that view to Django."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

import django_tilestatus.urls


def own_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("the project's own view", content_type="text/plain")


patterns = [path("metrics", own_view, name="metrics"), *django_tilestatus.urls.urlpatterns]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("maps/v1/", include((patterns, "tilestatus"))),
]
