"""The requests a process died on, counted once as server errors by whoever sees it first.

A process that dies without a word (SIGKILL, the out-of-memory killer, a host that
vanished) cannot count its own last requests: their clients got no answer, a server
error as they see it. Its in-flight entries stay behind in the store, which is how the
page names them; the first reader that finds the process dead with entries in flight
(the page, the metrics, ``tilestatus_top`` or the purge, whichever reads first) claims the
death in the store (``StatusStore.claim_death``: atomic, so two readers cannot both count)
and counts each entry as a server error that lasted from its start to the process's last
sign of life, through its own recorder's statistics, sent with its next write.

Entries already counted (a request whose abort its process recorded before exiting:
``Entry.counted``) are not counted again.

Core module: imports the standard library, ``recording``, ``statistics`` and ``storage``
only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..recording import inflight
from ..recording.recorder import Recorder
from ..statistics.counting import Ended
from ..storage.interface import StatusStore

#: The status a request its process died on is counted with.
DIED_STATUS = 500


@dataclass(frozen=True)
class Death:
    """A process found dead, with the raw in-flight values it left."""

    host: str
    pid: int
    last_seen: float
    in_flight: Sequence[Any]


def died_on(death: Death) -> list[Ended]:
    """The requests ``death`` left in flight that are not counted yet."""
    requests = []
    for entry in map(inflight.decode, death.in_flight):
        if entry is not None and not entry.counted:
            seconds = max(0.0, death.last_seen - entry.started)
            requests.append(
                Ended(entry.path, DIED_STATUS, False, seconds, 0.0, death.last_seen, entry.source)
            )
    return requests


def count_deaths(store: StatusStore, deaths: Iterable[Death], recorder: Recorder) -> int:
    """Count what each death left in flight, for the deaths this caller claims first;
    returns how many requests were counted. Sent with the recorder's next write."""
    counted = 0
    for death in deaths:
        requests = died_on(death)
        if requests and store.claim_death(death.host, death.pid):
            recorder.stats.count_ended(requests, recorder.tile_labels)
            counted += len(requests)
    return counted
