"""Counting tile statistics by hand, and looking into a recorder, for the tests.

``count`` adds one request to a ``TileStats`` as the writer would count it (the
writer only counts the requests that ended, ``TileStats.count_ended``);
``Noted`` is such a request; ``bucket_of`` is a value's bucket worked out on its
own; ``pending`` is how many events a recorder holds for its next send.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

from django_tilestatus.recording.recorder import Recorder
from django_tilestatus.statistics.counting import TileStats
from django_tilestatus.statistics.schema import BUCKETS, CLIENT_ERROR, HIT, RENDERED


@dataclass
class Noted:
    """One request's notes, as the writer counts them (``counting.EndedRequest``)."""

    path: str
    status: int | None
    from_cache: bool
    seconds: float
    lock_wait: float
    ended: float
    source: str = ""


#: A status and cache flag per outcome (anything else: a server error).
STATUS_OF = {HIT: (200, True), RENDERED: (200, False), CLIENT_ERROR: (400, False)}


def count(
    stats: TileStats,
    layer: str,
    zoom: int,
    outcome: str,
    seconds: float,
    lock_wait: float,
    path: str,
    when: float | None = None,
) -> None:
    """Count one request with ``outcome`` that ended at ``when`` (default: now)."""
    status, from_cache = STATUS_OF.get(outcome, (500, False))
    ended = time.time() if when is None else when
    noted = Noted(path, status, from_cache, seconds, lock_wait, ended)
    stats.count_ended([noted], lambda head: (layer, zoom))


def bucket_of(seconds: float) -> int:
    """The index of the first bucket whose upper bound is at least ``seconds``."""
    return bisect.bisect_left(BUCKETS, seconds)


def pending(recorder: Recorder) -> int:
    """Events (and requests begun) queued for the recorder's next send."""
    return len(recorder._queue)
