"""The import paths the docs gave before the package was laid out by job still work."""

from __future__ import annotations


def test_fast_path_and_tile_view_import_from_where_they_were() -> None:
    from django_tilestatus.fastpath import FastPath, FastPathMiddleware
    from django_tilestatus.views import tile
    from django_tilestatus.web import fastpath, tile_view

    assert (FastPath, FastPathMiddleware) == (fastpath.FastPath, fastpath.FastPathMiddleware)
    assert tile is tile_view.tile
