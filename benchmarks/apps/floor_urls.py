"""A plain Django view calling the same TileStache layer, nothing recorded.

What any Django project would write first: one URL pattern, the layer's
``getTileResponse``, an ``HttpResponse``. It is the floor the tile view's own
cost is measured against.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from django_tilestatus.tilestache import build_configuration, import_tilestache

from ..config import config_path

LAYERS = build_configuration(str(config_path())).layers
Coordinate = import_tilestache().Core.Coordinate


def tile(request: HttpRequest, layer: str, z: int, x: int, y: int, ext: str) -> HttpResponse:
    status, headers, body = LAYERS[layer].getTileResponse(Coordinate(y, x, z), ext)
    return HttpResponse(body, status=status, content_type=headers["Content-Type"])


urlpatterns = [path("tiles/<str:layer>/<int:z>/<int:x>/<int:y>.<str:ext>", tile)]
