"""Seeding jobs as the status page, its JSON and text, ``tilestatus_top`` and the metrics
show them (adapter: reads the job store of the settings in force)."""

from __future__ import annotations

import logging
import time
from typing import Any

from .jobs import Job

logger = logging.getLogger(__name__)

#: Jobs shown at most (newest first).
SHOWN = 10
BAR_WIDTH = 20


def recent_jobs() -> list[Job]:
    """The newest jobs; none when they cannot be read (the rest of the page still shows)."""
    from .running import job_store

    try:
        return job_store().recent(SHOWN)
    except Exception as exc:  # noqa: BLE001 - a section of the page, never its failure
        logger.warning("Seeding jobs cannot be read: %r", exc)
        return []


def seeding_dicts(jobs: list[Job], now: float | None = None) -> list[dict[str, Any]]:
    """The JSON ``seeding`` list."""
    now = time.time() if now is None else now
    return [job.as_dict(now) for job in jobs]


def text_lines(jobs: list[Job], now: float | None = None) -> list[str]:
    """The Seeding section of the plain-text page and of ``tilestatus_top``."""
    if not jobs:
        return []
    now = time.time() if now is None else now
    lines = ["Seeding"]
    for job in jobs:
        item = job.as_dict(now)
        filled = int(BAR_WIDTH * item["percent"] / 100)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        eta = "" if item["eta"] is None else f", ETA {round(item['eta'])} s"
        lines.append(
            f"  {job.id} {job.state:<11} [{bar}] {item['percent']:5.1f}% "
            f"{job.processed:,}/{job.total:,} {','.join(job.layers)} z{job.zooms}"
        )
        working = ", ".join(item["processes"]) or "none"
        lines.append(
            f"    {job.done:,} rendered, {job.skipped:,} skipped, {job.failed:,} failed, "
            f"{item['rate']:.1f} tiles/s{eta}; working: {working}; by {job.started_by}"
        )
        lines.extend(f"    error: {error}" for error in job.errors[:3])
    return lines
