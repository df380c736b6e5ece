"""The benchmarked settings with the fast path's middleware listed first (the other adapter)."""

from .settings import *  # noqa: F403
from .settings import MIDDLEWARE

MIDDLEWARE = ["django_tilestatus.fastpath.FastPathMiddleware", *MIDDLEWARE]
