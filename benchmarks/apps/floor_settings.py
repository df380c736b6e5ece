"""The plain-Django floor: the same settings and middleware, a minimal tile view."""

from .settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.apps.floor_urls"
