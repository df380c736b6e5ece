"""TileStache's original ``StatusServer`` access pattern, faithfully re-implemented.

``TileStache.Goodies.StatusServer`` no longer imports on Python 3 (Python 2
syntax), so its pattern is rebuilt here for comparison: a WSGI wrapper around
``WSGITileServer`` and a cache wrapper that, for every event, make a new Redis
client (so a new connection) and send LPUSH, EXPIRE and LTRIM as three
commands; ``get_recent`` finds the lists with KEYS. ``apps/original.py``
serves it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from django_tilestatus.tilestache import import_tilestache

KEEP = 20


def update_status(msg: str, url: str) -> None:
    """As the original: a new client per event, three commands, one list per PID."""
    red = redis.Redis.from_url(url)
    key = "pid-%d-statuses" % os.getpid()
    red.lpush(key, "%.6f %s" % (time.time(), msg))
    red.expire(key, 60 * 60)
    red.ltrim(key, 0, KEEP)
    red.close()


def get_recent(client: Any) -> tuple[list[tuple[float, int, str]], list[tuple[float, int, str]]]:
    """As the original: KEYS over the whole database, then one LRANGE per list."""
    processes, messages = [], []
    for key in client.keys("pid-*-statuses"):
        now = time.time()
        pid = int(key.split(b"-")[1])
        entries = [raw.split(b" ", 1) for raw in client.lrange(key, 0, KEEP)]
        found = [(now - float(stamp), pid, text.decode()) for stamp, text in entries]
        messages += found
        processes += found[:1]
    processes.sort()
    messages.sort()
    return processes, messages


class CacheWrapper:
    """Records the cache lock as the original's wrapper did."""

    def __init__(self, cache: Any, url: str):
        self.cache = cache
        self.url = url

    def lock(self, layer: Any, coord: Any, format: str) -> Any:
        start = time.time()
        update_status("Attempted cache lock", self.url)
        self.cache.lock(layer, coord, format)
        update_status("Got cache lock in %.3f seconds" % (time.time() - start), self.url)

    def unlock(self, layer: Any, coord: Any, format: str) -> Any:
        return self.cache.unlock(layer, coord, format)

    def remove(self, layer: Any, coord: Any, format: str) -> Any:
        return self.cache.remove(layer, coord, format)

    def read(self, layer: Any, coord: Any, format: str) -> Any:
        return self.cache.read(layer, coord, format)

    def save(self, body: Any, layer: Any, coord: Any, format: str) -> Any:
        return self.cache.save(body, layer, coord, format)


class StatusServer(import_tilestache().WSGITileServer):
    """``WSGITileServer`` recording Started/Finished/Error around every request."""

    def __init__(self, config: Any, url: str):
        super().__init__(config)
        self.url = url
        self.config.cache = CacheWrapper(self.config.cache, url)
        update_status("Created", url)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        start = time.time()
        path = environ["PATH_INFO"]
        update_status("Started %s" % path, self.url)
        try:
            response = super().__call__(environ, start_response)
        except Exception as exc:
            update_status("Error: %s after %.3f seconds" % (exc, time.time() - start), self.url)
            raise
        update_status("Finished %s in %.3f seconds" % (path, time.time() - start), self.url)
        return response
