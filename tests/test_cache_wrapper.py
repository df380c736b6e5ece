"""The wrapper of TileStache's cache never lets a label or an odd cache fail a tile."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from django_tilestatus.serving import locks
from django_tilestatus.serving.tilestache_cache import InstrumentedCache


class Coord:
    zoom, column, row = 3, 1, 2


class NamelessLayer:
    stale_lock_timeout = 15

    def name(self) -> str:
        raise RuntimeError("no name")


class OwnLockCache:
    """A cache of a project's own: its own lock, and whatever else it holds."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.cachepath = "/srv/tiles"

    def lock(self, *args: Any) -> None:
        self.calls.append("lock")

    def unlock(self, *args: Any) -> None:
        self.calls.append("unlock")

    def read(self, *args: Any) -> bytes:
        return b"tile"

    def save(self, *args: Any) -> None:
        self.calls.append("save")

    def remove(self, *args: Any) -> None:
        self.calls.append("remove")


def test_an_odd_cache_keeps_its_own_lock_and_a_nameless_layer_still_locks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unexpected(*args: Any) -> None:
        raise RuntimeError("a cache like no other")

    monkeypatch.setattr(locks, "backend_for", unexpected)
    inner = OwnLockCache()
    cache = InstrumentedCache(inner)
    cache.lock(NamelessLayer(), Coord(), "png")
    cache.save(b"x", NamelessLayer(), Coord(), "png")
    cache.remove(NamelessLayer(), Coord(), "png")
    cache.unlock(NamelessLayer(), Coord(), "png")
    assert inner.calls == ["lock", "save", "remove", "unlock"]
    assert cache.read(NamelessLayer(), Coord(), "png") == b"tile"


def test_the_wrapper_passes_on_what_it_does_not_know_and_copies_safely() -> None:
    cache = InstrumentedCache(OwnLockCache())
    assert cache.cachepath == "/srv/tiles"
    assert repr(cache).startswith("InstrumentedCache(")
    assert copy.copy(cache).inner is cache.inner
