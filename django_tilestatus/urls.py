"""URLs: include under any prefix, e.g. ``path("tiles/", include("django_tilestatus.urls"))``."""

from django.urls import path, re_path
from django.views.generic import RedirectView

from .web import metrics_view, seeding_view, status_view, tile_view

app_name = "tilestatus"

#: Every path under the include but the status page's two: the tile view answers (and
#: records) them all, however odd, newlines included.
TILE_PATH = r"^(?!status/?\Z|status/seeding/[0-9a-f]{1,32}/cancel\Z)(?P<path>[\s\S]*)\Z"

urlpatterns = [
    # The metrics path is matched first, as the one exact path a tile cannot have (a
    # layer may not be named "metrics": tilestatus.E009); a tile costs one short compare.
    path("metrics", metrics_view.metrics, name="metrics"),
    # Nearly every request is a tile and Django tries patterns in order: the tile
    # pattern comes next, so a tile request is resolved by two matches in this list.
    re_path(TILE_PATH, tile_view.tile, name="tile"),
    path("status/", status_view.status, name="status"),
    re_path(
        r"^status/seeding/(?P<job_id>[0-9a-f]{1,32})/cancel\Z",
        seeding_view.cancel,
        name="seeding-cancel",
    ),
    path("status", RedirectView.as_view(pattern_name="tilestatus:status", query_string=True)),
    # Never matched (the pattern above takes the empty path): lets
    # reverse("tilestatus:tile") work without arguments.
    path("", tile_view.tile, name="tile"),
]
