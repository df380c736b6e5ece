"""What ``tilestatus_seed`` prints while a job runs: a progress bar on a terminal (tqdm),
plain lines every few seconds otherwise (a log, CI, a pipe)."""

from __future__ import annotations

import time
from typing import Any

from .jobs import Job


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def line(job: Job, now: float) -> str:
    """One plain progress line."""
    percent = 100.0 * job.processed / job.total if job.total else 100.0
    return (
        f"{job.id}: {job.processed:,}/{job.total:,} tiles ({percent:.1f}%), "
        f"{job.done:,} rendered, {job.skipped:,} skipped, {job.failed:,} failed, "
        f"{job.rate(now):.1f} tiles/s, ETA {_duration(job.eta(now))}"
    )


class Progress:
    """Shows a job's progress on ``out`` (a Django ``OutputWrapper``)."""

    def __init__(self, out: Any, total: int, every: float = 5.0):
        self.out = out
        self.every = every
        self._last = 0.0
        self._bar: Any = None
        stream = getattr(out, "_out", out)
        if getattr(stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                unit="tile",
                unit_scale=True,
                dynamic_ncols=True,
                file=stream,
                smoothing=0.1,
            )

    def update(self, job: Job, now: float | None = None) -> None:
        now = time.time() if now is None else now
        bar = self._bar
        if bar is not None:
            bar.n = job.processed
            bar.set_postfix_str(
                f"rendered {job.done:,}, skipped {job.skipped:,}, errors {job.failed:,}",
                refresh=False,
            )
            bar.refresh()
            return
        if now - self._last >= self.every:
            self._last = now
            self.out.write(line(job, now))

    def close(self, job: Job | None) -> None:
        if self._bar is not None:
            if job is not None:
                self._bar.n = job.processed
            self._bar.close()
            self._bar = None
        elif job is not None:
            self.out.write(line(job, time.time()))
