"""TileStache's own ``WSGITileServer``, nothing recorded: the reference (1.0).

TileStache is imported through the app's compatibility module, the only way
it imports on Python 3; its ``WSGITileServer`` serves PNG tiles correctly.
"""

from django_tilestatus.tilestache import build_configuration, import_tilestache

from ..config import config_path

application = import_tilestache().WSGITileServer(build_configuration(str(config_path())))
