"""The original StatusServer pattern as a WSGI application (see ``original_pattern``).

Redis comes from ``TILESTATUS_BENCH_ORIGINAL_REDIS_URL``.
"""

import os

from django_tilestatus.tilestache import build_configuration

from ..config import config_path
from ..original_pattern import StatusServer

application = StatusServer(
    build_configuration(str(config_path())), os.environ["TILESTATUS_BENCH_ORIGINAL_REDIS_URL"]
)
