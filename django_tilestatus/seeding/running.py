"""Working on a seeding job in this process, with the app's settings (adapter).

``work`` claims chunks of a job one by one until none is left (local processes);
``run_chunk`` does one chunk (a task of Django's task framework). Both render
through the process's tile server (``runtime.get_server``), so the tiles are
recorded and counted as this process's, and both stop between metatiles once the
job is cancelled.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import conf, connection, runtime
from ..serving.tile_server import tile_grid
from ..statistics.schema import (
    RENDERED,
    RequestCount,
    ResponseSeconds,
    SeedCount,
    SeedSeconds,
)
from .area import Area, area_of, polygons_from_json
from .jobs import CANCELLED, Job, JobStore
from .plan import LayerShape, Plan
from .work import ChunkRenderer, Freshness

#: Seconds a worker trusts the job's state it read (cancel is seen within this).
STATE_EVERY = 0.5


def job_store() -> JobStore:
    return JobStore(connection.get_client(), conf.get_config().key_prefix)


def layer_shape(layer: Any, name: str) -> LayerShape:
    metatile = getattr(layer, "metatile", None)
    rows = int(getattr(metatile, "rows", 1) or 1)
    columns = int(getattr(metatile, "columns", 1) or 1)
    return LayerShape(name, rows, columns)


def plan_of(spec: dict[str, Any]) -> Plan:
    """The plan a job's spec describes, with the layers of this process's configuration."""
    layers = runtime.get_server().configuration.layers
    shapes = [layer_shape(layers[name], name) for name in spec["layers"]]
    bbox = spec.get("bbox")
    box = tuple(float(v) for v in bbox) if bbox else None
    area = area_of(box, polygons_from_json(spec.get("polygons") or []))  # type: ignore[arg-type]
    return Plan(
        shapes,
        int(spec["min_zoom"]),
        int(spec["max_zoom"]),
        area,
        chunk_tiles=int(spec.get("chunk_tiles", 64)),
    )


def renderer_of(spec: dict[str, Any], plan: Plan) -> ChunkRenderer:
    older_than = spec.get("older_than")
    return ChunkRenderer(
        runtime.get_server(),
        plan,
        str(spec.get("extension", "png")),
        Freshness(None if older_than is None else float(older_than)),
        get_server=runtime.get_server,
    )


class CancelWatch:
    """Whether the job was cancelled, read at most every ``STATE_EVERY`` seconds."""

    def __init__(self, store: JobStore, job_id: str):
        self.store, self.job_id = store, job_id
        self._read = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._read >= STATE_EVERY:
            self._read = now
            self._cancelled = self.store.state(self.job_id) in (CANCELLED, None)
        return self._cancelled


def identity() -> tuple[str, int]:
    return conf.get_config().host, os.getpid()


def work(job_id: str, should_stop: Callable[[], bool]) -> int:
    """Render the job's chunks this process claims until none is left, the job is
    cancelled or ``should_stop``; the number of chunks this process did."""
    store = job_store()
    job = store.get(job_id)
    if job is None:
        return 0
    plan = plan_of(job.spec)
    renderer = renderer_of(job.spec, plan)
    host, pid = identity()
    store.seen(job_id, host, pid)
    cancelled = CancelWatch(store, job_id)

    def stop() -> bool:
        return should_stop() or cancelled()

    did = 0
    while not stop():
        number = store.claim(job_id)
        if number >= plan.chunks:
            break
        if store.is_done(job_id, number):
            continue
        result = renderer.render(plan.chunk(number), stop)
        if result.stopped:
            break
        store.finish_chunk(job_id, number, result.counts, host, pid, result.errors)
        did += 1
    return did


#: Plans and renderers of the jobs this process ran chunks of (a task worker runs
#: many chunks of one job): job id -> (plan, renderer).
_prepared: dict[str, tuple[Plan, ChunkRenderer]] = {}
_prepared_lock = threading.Lock()


def run_chunk(job_id: str, number: int) -> str:
    """Do chunk ``number`` of a job unless it is done or the job cancelled or gone; what
    happened, in a word (a task's result)."""
    store = job_store()
    with _prepared_lock:
        prepared = _prepared.get(job_id)
    if prepared is None:
        job = store.get(job_id)
        if job is None:
            return "gone"
        plan = plan_of(job.spec)
        prepared = (plan, renderer_of(job.spec, plan))
        with _prepared_lock:
            if len(_prepared) > 8:
                _prepared.clear()
            _prepared[job_id] = prepared
    plan, renderer = prepared
    cancelled = CancelWatch(store, job_id)
    if cancelled():
        return "cancelled"
    if store.is_done(job_id, number):
        return "already done"
    host, pid = identity()
    result = renderer.render(plan.chunk(number), cancelled)
    if result.stopped:
        return "cancelled"
    store.finish_chunk(job_id, number, result.counts, host, pid, result.errors)
    return "done"


def mean_render_seconds(layers: list[str]) -> dict[str, float]:
    """Each layer's mean seconds per rendered tile (or metatile), from the statistics
    recorded so far (traffic and seeding); layers never rendered are left out."""
    try:
        totals = runtime.get_store().stat_totals().fields
    except Exception:  # noqa: BLE001 - an estimate is optional
        return {}
    seconds: dict[str, float] = {}
    counts: dict[str, float] = {}
    for record, value in totals.items():
        if isinstance(record, ResponseSeconds | SeedSeconds) and record.outcome == RENDERED:
            seconds[record.layer] = seconds.get(record.layer, 0.0) + value
        elif isinstance(record, RequestCount | SeedCount) and record.outcome == RENDERED:
            counts[record.layer] = counts.get(record.layer, 0.0) + value
    return {
        layer: seconds[layer] / counts[layer]
        for layer in layers
        if counts.get(layer) and layer in seconds
    }


def zoom_range(layer: Any) -> tuple[int, int]:
    grid = tile_grid(layer)
    return grid.min_zoom, grid.max_zoom


def is_web_mercator(layer: Any) -> bool:
    grid = tile_grid(layer)
    return grid.columns == 1 and grid.rows == 1


def describe(job: Job) -> str:
    return (
        f"{job.id} {job.state}: {','.join(job.layers)} z{job.zooms}, "
        f"{job.processed:,}/{job.total:,} tiles ({job.done:,} rendered, "
        f"{job.skipped:,} skipped, {job.failed:,} failed)"
    )


__all__ = ["Area", "describe", "job_store", "plan_of", "run_chunk", "work"]
