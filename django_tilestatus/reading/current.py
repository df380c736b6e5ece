"""The one status read that the page, the metrics and ``tilestatus_top`` share.

``current_report`` flushes this process's own queued events, reads the store
once (bounded), builds the report and, when asked, its Tiles section, counts
what dead processes left in flight (``deaths``, once whoever reads first) and
deletes the long-silent dead processes the report names (both best effort).

Adapter: reads the settings (``conf``) and the store (``runtime``), and the tile
URLs' root from the URLconf.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from django.urls import reverse

from .. import conf, runtime
from ..recording.recorder import active, flush_own_events
from ..runtime import get_store
from ..statistics.tiles_report import MINUTES, build_tiles
from ..storage import Snapshot, StatusStore, StoreUnavailable
from ..storage.interface import Head
from .deaths import Death, count_deaths
from .liveness import pid_namespace
from .report import GONE, Report, ReportSettings, build_report

logger = logging.getLogger(__name__)

#: Whether the last attempt to count deaths was refused (logged once until one works).
_refused = False


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
        pid_namespace=pid_namespace(),
    )
    store = get_store()
    snapshot = store.snapshot(time.time(), recent=config.messages, host=host)
    skipped = snapshot.skipped + snapshot.malformed

    def read_heads(processes: Sequence[tuple[str, int]]) -> list[Head]:
        nonlocal skipped
        heads = store.heads(processes)
        skipped += sum(head.skipped for head in heads)
        return heads

    policy = settings.policy(_namespaces(store, snapshot, settings))
    report, purge = build_report(snapshot, settings, policy, read_heads=read_heads)
    count_deaths_seen(store, snapshot, report, purge)
    report = report.with_stacks(process=stacks_of)
    if purge:
        store.delete_quietly(purge)
    if not tiles:
        return replace(report, host=host, skipped=skipped)
    tile_root = reverse("tilestatus:tile").rstrip("/")
    minutes = store.stat_minutes(snapshot.now, MINUTES)
    section = build_tiles(minutes, snapshot.now, tile_root)
    return replace(report, host=host, tiles=section, skipped=skipped + minutes.skipped)


def count_deaths_seen(
    store: StatusStore, snapshot: Snapshot, report: Report, purge: list[tuple[str, int]]
) -> None:
    """Count what the dead processes of this read left in flight (see ``deaths``): those
    the report shows gone, and those it is about to delete. Best effort: a refusal (a
    read-only replica) is logged once and the read goes on."""
    global _refused
    recorder = active()
    if recorder is None or not snapshot.in_flight:
        return
    seen = {(log.host, log.pid): log.last_seen for log in snapshot.processes}
    dead = {(row.host, row.pid) for row in report.processes if row.state == GONE}
    deaths = [
        Death(host, pid, seen[host, pid], snapshot.in_flight[host, pid])
        for host, pid in sorted(dead.union(purge))
        if (host, pid) in snapshot.in_flight and (host, pid) in seen
    ]
    if not deaths:
        return
    runtime.get_server()  # the layers' names label what is counted
    try:
        if count_deaths(store, deaths, recorder):
            recorder.flush(timeout=1.0)
    except StoreUnavailable as exc:
        if not _refused:
            logger.warning("Tile status: could not count dead processes' requests (%s).", exc)
        _refused = True
    else:
        _refused = False


def _namespaces(
    store: StatusStore, snapshot: Snapshot, settings: ReportSettings
) -> dict[tuple[str, int], int]:
    """The PID namespaces this host's processes recorded (one round trip, only when
    this process knows its own and the snapshot holds processes of this host)."""
    if settings.pid_namespace is None:
        return {}
    here = [(log.host, log.pid) for log in snapshot.processes if log.host == settings.this_host]
    return store.namespaces(here) if here else {}
