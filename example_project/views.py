"""The example project's home page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

#: The tiles the home page shows: zoom 2, a 4 x 4 grid covering the world.
ZOOM = 2


def home(request: HttpRequest) -> HttpResponse:
    rows = [[(ZOOM, x, y) for x in range(2**ZOOM)] for y in range(2**ZOOM)]
    return render(request, "example_project/home.html", {"rows": rows})
