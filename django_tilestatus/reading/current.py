"""The one status read that the page, the metrics and ``tilestatus_top`` share.

``current_report`` flushes this process's own queued events, reads the store
once (bounded), builds the report and, when asked, its Tiles section, and
deletes the long-silent dead processes the report names (best effort).

Adapter: reads the settings (``conf``) and the store (``runtime``), and the tile
URLs' root from the URLconf.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from django.urls import reverse

from .. import conf
from ..recording.recorder import flush_own_events
from ..runtime import get_store
from ..statistics.tiles_report import MINUTES, build_tiles
from ..storage.interface import Head
from .report import Report, ReportSettings, build_report


def current_report(
    host: str | None = None, tiles: bool = True, stacks_of: tuple[str, int] | None = None
) -> Report:
    """Read the statuses and build the report, deleting long-silent dead processes.

    The read is bounded (see ``StatusStore.snapshot``); the deletions are
    best effort, so a read-only replica still serves the page. With ``tiles``
    the report carries the Tiles section (one more round trip). It sends the
    stacks of its first requests only (``Report.with_stacks``), and every one of
    the process ``stacks_of``. What the store could not read is skipped and
    counted (``Report.skipped``). Raises ``StoreUnavailable`` when the store
    cannot be reached.
    """
    config = conf.get_config()
    flush_own_events()
    settings = ReportSettings(
        this_host=config.host,
        hide_after=config.hide_after,
        purge_after=config.purge_after,
        busy_after=config.busy_after,
        messages=config.messages,
    )
    store = get_store()
    snapshot = store.snapshot(time.time(), recent=config.messages, host=host)
    skipped = snapshot.skipped + snapshot.malformed

    def read_heads(processes: Sequence[tuple[str, int]]) -> list[Head]:
        nonlocal skipped
        heads = store.heads(processes)
        skipped += sum(head.skipped for head in heads)
        return heads

    report, purge = build_report(snapshot, settings, read_heads=read_heads)
    report = report.with_stacks(process=stacks_of)
    if purge:
        store.delete_quietly(purge)
    if not tiles:
        return replace(report, host=host, skipped=skipped)
    tile_root = reverse("tilestatus:tile").rstrip("/")
    minutes = store.stat_minutes(snapshot.now, MINUTES)
    section = build_tiles(minutes, snapshot.now, tile_root)
    return replace(report, host=host, tiles=section, skipped=skipped + minutes.skipped)
