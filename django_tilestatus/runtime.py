"""The process's core objects, built from the ``TILESTATUS`` settings in force.

The core (tile server, store, recorder) knows nothing of Django; this adapter
builds each from the settings once per process and forgets them when the
settings change (``reset``), so tests can override settings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Container, Sequence

from . import conf, connection
from .reading.liveness import DeathPolicy, pid_namespace
from .reading.locks import Claim, HolderReader, Recorded
from .recording import inflight, recorder, termination
from .recording.recorder import Recorder
from .serving import locks
from .serving.tile_server import MAX_ZOOM, TileServer, load_server
from .statistics import counting
from .storage import RedisStore, StatusStore
from .tilestache import set_mapnik_lock_observer

_lock = threading.Lock()
_server: TileServer | None = None
_store: StatusStore | None = None
_holders: HolderReader | None = None
_identity: locks.Identity | None = None


def get_store() -> StatusStore:
    """The process's status store on its Redis client, for the settings in force.

    One per process, so what it remembers (a clean-up it already reported
    refused) holds across requests.
    """
    global _store
    if _store is None:
        config = conf.get_config()
        _store = RedisStore(connection.get_client(), config.key_prefix, config.keep, config.ttl)
    return _store


def make_recorder() -> Recorder | None:
    """This process's recorder, or None when ``ENABLED`` is False.

    The store is built on the writer's first send, not here, so a request
    never waits for a Redis client to be made.
    """
    config = conf.get_config()
    if not config.enabled:
        return None
    return Recorder(
        get_store,
        config.host,
        os.getpid(),
        busy_after=config.busy_after,
        tile_labels=tile_labels,
        namespace=pid_namespace(),
    )


def get_server() -> TileServer:
    """The process's tile server for the ``CONFIG`` in force, built once."""
    global _server
    if _server is None:
        with _lock:
            if _server is None:
                _server = load_server(conf.get_config().config)
    return _server


def layer_names() -> Container[str]:
    """The configured layers' names (none before the tile server is built)."""
    server = _server
    return server.configuration.layers if server is not None else ()


def tile_labels(path: str) -> tuple[str, int]:
    """The statistics' ``(layer, zoom)`` labels of a tile path (see ``counting.tile_of``)."""
    return counting.tile_of(path, layer_names(), MAX_ZOOM)


def _holder_reader() -> HolderReader:
    global _holders
    holders = _holders
    if holders is None:
        config = conf.get_config()
        policy = DeathPolicy(config.host, config.hide_after, namespace=pid_namespace())
        holders = _holders = HolderReader(get_store, policy)
    return holders


def lock_holders(layer: str, metatile: str) -> Sequence[Claim]:
    """Who holds a metatile's cache lock, for a waiting request (``serving.locks``): read
    from the in-flight entries, while recording is on. A holder on another host is dead
    once silent past ``HIDE_AFTER``."""
    if recorder.active() is None:
        return ()
    return _holder_reader()(layer, metatile)


def judge_lock_record(recorded: Recorded) -> Claim | None:
    """The claim of the holder a lock records of itself, dead or not, while recording is
    on (``serving.locks``: for a holder whose in-flight entry was never written)."""
    if recorder.active() is None:
        return None
    return _holder_reader().judge(recorded)


def lock_identity() -> locks.Identity:
    """This process as the locks it takes record it: the ``HOST`` it records under and
    its PID namespace."""
    global _identity
    identity = _identity
    if identity is None:
        identity = _identity = locks.Identity(conf.get_config().host, pid_namespace())
    return identity


def install() -> None:
    """Record with recorders made from the settings (called when the app is ready), say
    ``Destroyed`` when told to stop (SIGTERM), show waits for TileStache's global
    Mapnik lock as a phase of the request waiting, and let waiters for a metatile's
    cache lock learn its holder (to break a dead holder's lock), from the in-flight
    entries and from what the lock records of the process that took it."""
    recorder.install_factory(make_recorder)
    termination.install()
    set_mapnik_lock_observer(inflight.MapnikLockPhases())
    locks.set_holder_source(lock_holders, judge_lock_record)
    locks.set_holder_identity(lock_identity)


def reset() -> None:
    """Forget everything built from the settings; the next use builds it anew."""
    global _server, _store, _holders, _identity
    recorder.discard_recorder(flush=False)
    connection.reset()
    _server = _store = _holders = _identity = None
    conf.reset()
