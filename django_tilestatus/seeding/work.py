"""Rendering a seeding job's chunks, metatile by metatile, as requests would render them.

For each metatile of a chunk, the tiles of the job's area in it are looked up in
the cache: a tile is fresh when cached and (with ``older_than``) written at or
after that time. A Disk cache answers from the file's mtime; any other cache from
``read`` (present or not: its age is unknown, so ``older_than`` re-renders every
tile of it). If any tile is not fresh, the metatile is rendered once through
``serving.answer.seed_tile`` (``Layer.getTileResponse`` with the wrapped cache: its
lock, the metatile's other tiles saved with it, statistics counted as seeding); a
layer that draws tiles one by one (no real metatile) renders each tile that is
not fresh. A worker stops between metatiles when told to (``should_stop``), leaving
the chunk undone, so a resumed job does it again and skips what was written.

Core module: imports the standard library, ``serving`` and the seeding core only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..serving.answer import seed_tile
from ..serving.tile_server import TileServer
from .jobs import KEEP_ERRORS
from .plan import Chunk, Plan

MISSING, STALE, FRESH = 0, 1, 2


@dataclass
class ChunkResult:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    #: Told to stop before its last metatile: the chunk is not done.
    stopped: bool = False

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.done, self.skipped, self.failed


@dataclass(frozen=True)
class Freshness:
    """When a cached tile needs no render: ``older_than`` None: whenever it is cached."""

    older_than: float | None = None


def cached_at(cache: Any, layer: Any, coord: Any, format: str) -> float | None:
    """When the tile was cached (a Disk cache: its file's mtime; others: +inf if ``read``
    gives it), or None if it is not."""
    inner = getattr(cache, "inner", cache)
    fullpath = getattr(inner, "_fullpath", None)
    if fullpath is not None and hasattr(inner, "cachepath"):
        try:
            mtime = os.stat(fullpath(layer, coord, format)).st_mtime
        except OSError:
            return None
        lifespan = getattr(layer, "cache_lifespan", None)
        if lifespan and time.time() - mtime > lifespan:
            return None
        return mtime
    return float("inf") if inner.read(layer, coord, format) is not None else None


class ChunkRenderer:
    """Renders the chunks of one plan with one tile server (one per process)."""

    def __init__(
        self,
        server: TileServer,
        plan: Plan,
        extension: str,
        freshness: Freshness,
        get_server: Callable[[], TileServer] | None = None,
    ):
        self.server = server
        self.plan = plan
        self.extension = extension
        self.freshness = freshness
        self._get_server = get_server or (lambda: server)
        self._coordinate = server._coordinate

    def _state(self, layer: Any, format: str, zoom: int, x: int, y: int) -> int:
        """``MISSING``, ``STALE`` (cached before ``older_than``) or ``FRESH``."""
        coord = self._coordinate(y, x, zoom)
        when = cached_at(self.server.configuration.cache, layer, coord, format)
        if when is None:
            return MISSING
        older_than = self.freshness.older_than
        if older_than is None or (when != float("inf") and when >= older_than):
            return FRESH
        return STALE

    def render(self, chunk: Chunk, should_stop: Callable[[], bool]) -> ChunkResult:
        result = ChunkResult()
        segment = chunk.segment
        name, zoom = segment.layer.name, segment.zoom
        layer = self.server.configuration.layers[name]
        _, format = layer.getTypeByExtension(self.extension)
        whole_metatile = bool(layer.doMetatile())
        for index in range(chunk.start, chunk.stop):
            if should_stop():
                result.stopped = True
                return result
            tiles = segment.tiles_of(index, self.plan.area)
            states = [(t, self._state(layer, format, zoom, *t)) for t in tiles]
            stale = [(t, state) for t, state in states if state != FRESH]
            result.skipped += len(tiles) - len(stale)
            if whole_metatile and stale:
                self._render(name, zoom, *stale[0], len(stale), result)
            else:
                for tile, state in stale:
                    self._render(name, zoom, tile, state, 1, result)
        return result

    def _render(
        self,
        name: str,
        zoom: int,
        tile: tuple[int, int],
        state: int,
        tiles: int,
        result: ChunkResult,
    ) -> None:
        """Render the metatile of ``tile`` (``tiles`` of the job's tiles in it): a missing
        tile as a request would (the cache read again once its lock is held), a stale one
        whatever the cache holds."""
        x, y = tile
        ignore_cached = state == STALE
        answer = seed_tile(name, (zoom, x, y), self.extension, ignore_cached, self._get_server)
        if answer.status < 400:
            result.done += tiles
        elif answer.status < 500:  # the provider has no tile there
            result.skipped += tiles
        else:
            result.failed += tiles
            if len(result.errors) < KEEP_ERRORS:
                reason = answer.body.decode("utf-8", "replace").strip()
                result.errors.append(f"{name}/{zoom}/{x}/{y}: {reason}"[:300])
