"""Recording the moments of a tile request, worded by ``vocabulary``.

Call sites take the recorder once (``active()``, None when recording is off)
and pass it in, so a request looks the recorder up once, not once per event.

Core module: imports the standard library, ``recorder`` and ``vocabulary`` only.
"""

from __future__ import annotations

from . import vocabulary
from .recorder import Recorder, active
from .vocabulary import path_label

__all__ = [
    "active",
    "error",
    "finished",
    "lock_acquired",
    "lock_attempted",
    "path_label",
    "started",
]


def started(recorder: Recorder, label: str) -> None:
    """Record ``Started <label>``, preceded by ``Created`` in a new process."""
    if not recorder.created:
        recorder.created = True
        recorder.record(vocabulary.created())
    recorder.record(vocabulary.started(label))


def finished(recorder: Recorder, label: str, seconds: float) -> None:
    recorder.record(vocabulary.finished(label, seconds))


def error(recorder: Recorder, exc: BaseException, seconds: float) -> None:
    recorder.record(vocabulary.error(exc, seconds))


def lock_attempted(recorder: Recorder) -> None:
    recorder.record(vocabulary.lock_attempted())


def lock_acquired(recorder: Recorder, seconds: float) -> None:
    recorder.record(vocabulary.lock_acquired(seconds))
