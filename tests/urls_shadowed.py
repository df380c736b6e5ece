"""A project view routed before the app's include, on a path under the tile URLs."""

from django.contrib import admin
from django.urls import include, path

from .urls_other_prefix import own_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("tiles/solid/0/0/0.png", own_view),
    path("tiles/", include("django_tilestatus.urls")),
]
