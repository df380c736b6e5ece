"""The example project's home page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_tilestatus.runtime import get_server

from .world import LAYER

#: The demo tiles the home page shows: zoom 2, a 4 x 4 grid covering the world.
ZOOM = 2

#: The world map's zoom: its 4 x 4 tiles are one 4 x 4 metatile, rendered once
#: while the other fifteen requests wait for the cache lock.
WORLD_ZOOM = 2


def grid(zoom: int) -> list[list[tuple[int, int, int]]]:
    return [[(zoom, x, y) for x in range(2**zoom)] for y in range(2**zoom)]


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "rows": grid(ZOOM),
        # Served only where Mapnik is installed (see world.py).
        "world_rows": grid(WORLD_ZOOM) if LAYER in get_server().configuration.layers else None,
    }
    return render(request, "example_project/home.html", context)
