"""Django settings for the benchmarked Django servers: the example project's, pointed
at the benchmark's TileStache config. ``TILESTATUS_ENABLED=0`` turns recording off
as in the example project."""

from example_project.settings import *  # noqa: F403
from example_project.settings import TILESTATUS

from ..config import config_path

TILESTATUS = {**TILESTATUS, "CONFIG": config_path()}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
