"""The one status read that the page, the metrics and ``tilestatus_top`` share.

``current_report`` flushes this process's own queued events, reads the store
once (bounded), builds the report and, when asked, its Tiles section, and
deletes the long-silent dead processes the report names (best effort).

Adapter: reads the settings (``conf``) and the store (``runtime``), and the tile
URLs' root from the URLconf.
"""

from __future__ import annotations

import time
from dataclasses import replace

from django.urls import reverse

from .. import conf
from ..recording.recorder import flush_own_events
from ..runtime import get_store
from ..statistics.tiles_report import MINUTES, build_tiles
from ..storage import Snapshot, StatusStore
from .liveness import pid_namespace
from .report import Report, ReportSettings, build_report


def current_report(host: str | None = None, tiles: bool = True) -> Report:
    """Read the statuses and build the report, deleting long-silent dead processes.

    The read is bounded (see ``StatusStore.snapshot``); the deletions are
    best effort, so a read-only replica still serves the page. With ``tiles``
    the report carries the Tiles section (one more round trip). Raises
    ``StoreUnavailable`` when the store cannot be reached.
    """
    config = conf.get_config()
    flush_own_events()
    settings = ReportSettings(
        this_host=config.host,
        hide_after=config.hide_after,
        purge_after=config.purge_after,
        busy_after=config.busy_after,
        messages=config.messages,
        pid_namespace=pid_namespace(),
    )
    store = get_store()
    snapshot = store.snapshot(time.time(), recent=config.messages, host=host)
    policy = settings.policy(_namespaces(store, snapshot, settings))
    report, purge = build_report(snapshot, settings, policy, read_heads=store.heads)
    if purge:
        store.delete_quietly(purge)
    if not tiles:
        return replace(report, host=host)
    tile_root = reverse("tilestatus:tile").rstrip("/")
    section = build_tiles(store.stat_minutes(snapshot.now, MINUTES), snapshot.now, tile_root)
    return replace(report, host=host, tiles=section)


def _namespaces(
    store: StatusStore, snapshot: Snapshot, settings: ReportSettings
) -> dict[tuple[str, int], int]:
    """The PID namespaces this host's processes recorded (one round trip, only when
    this process knows its own and the snapshot holds processes of this host)."""
    if settings.pid_namespace is None:
        return {}
    here = [(log.host, log.pid) for log in snapshot.processes if log.host == settings.this_host]
    return store.namespaces(here) if here else {}
