"""Kept so ``django_tilestatus.fastpath.FastPathMiddleware`` and ``FastPath`` keep working:
the fast path lives in ``django_tilestatus.web.fastpath``."""

from .web.fastpath import FastPath, FastPathMiddleware, TileRoutes

__all__ = ["FastPath", "FastPathMiddleware", "TileRoutes"]
