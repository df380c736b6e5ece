"""Kept so ``django_tilestatus.views.tile`` keeps working: the tile view lives in
``django_tilestatus.web.tile_view``, the request it answers in ``serving.answer``."""

from .web.tile_view import tile

__all__ = ["tile"]
