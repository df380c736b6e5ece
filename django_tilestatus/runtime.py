"""The process's core objects, built from the ``TILESTATUS`` settings in force.

The core (tile server, store, recorder) knows nothing of Django; this adapter
builds each from the settings once per process and forgets them when the
settings change (``reset``), so tests can override settings.
"""

from __future__ import annotations

import os
import threading

from . import conf, connection, recorder
from .recorder import Recorder
from .store import RedisStore, StatusStore
from .tiles import TileServer, load_server

_lock = threading.Lock()
_server: TileServer | None = None


def get_store() -> StatusStore:
    """The status store on the process's Redis client, for the settings in force."""
    config = conf.get_config()
    return RedisStore(connection.get_client(), config.key_prefix, config.keep, config.ttl)


def make_recorder() -> Recorder | None:
    """This process's recorder, or None when ``ENABLED`` is False.

    The store is built on the writer's first send, not here, so a request
    never waits for a Redis client to be made.
    """
    config = conf.get_config()
    if not config.enabled:
        return None
    store: StatusStore | None = None

    def store_factory() -> StatusStore:
        nonlocal store
        if store is None:
            store = get_store()
        return store

    return Recorder(store_factory, config.host, os.getpid())


def get_server() -> TileServer:
    """The process's tile server for the ``CONFIG`` in force, built once."""
    global _server
    if _server is None:
        with _lock:
            if _server is None:
                _server = load_server(conf.get_config().config)
    return _server


def install() -> None:
    """Record with recorders made from the settings (called when the app is ready)."""
    recorder.install_factory(make_recorder)


def reset() -> None:
    """Forget everything built from the settings; the next use builds it anew."""
    global _server
    recorder.discard_recorder(flush=False)
    connection.reset()
    _server = None
    conf.reset()
