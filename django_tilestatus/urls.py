"""URLs: include under any prefix, e.g. ``path("tiles/", include("django_tilestatus.urls"))``."""

from django.urls import path, register_converter
from django.views.generic import RedirectView

from . import status_views, views


class AnyPathConverter:
    """Like ``<path:...>`` but also matching newlines, so every tile request,
    however odd, reaches the tile view and is answered and recorded there."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyPathConverter, "tilestatus_anypath")

app_name = "tilestatus"

urlpatterns = [
    path("status/", status_views.status, name="status"),
    path("status", RedirectView.as_view(pattern_name="tilestatus:status", query_string=True)),
    path("", views.tile, name="tile"),
    path("<tilestatus_anypath:path>", views.tile, name="tile"),
]
