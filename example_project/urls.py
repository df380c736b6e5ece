"""URLs of the example project: the home page, the admin and the tile URLs."""

from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import include, path, re_path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("tiles/", include("django_tilestatus.urls")),
    # The demo serves its own static files, with or without DEBUG, so it runs
    # under gunicorn as it is. A real deployment lets its web server do this.
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
