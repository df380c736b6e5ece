"""Recording the moments of a tile request, worded by ``vocabulary``.

Call sites take the recorder once (``active()``, None when recording is off)
and pass it in, so a request looks the recorder up once, not once per event.

A request is also an in-flight entry of its process from ``started`` to
``finished``/``error``/``aborted`` (see ``inflight``).

Core module: imports the standard library, ``inflight``, ``recorder`` and ``vocabulary`` only.
"""

from __future__ import annotations

from . import vocabulary
from .inflight import Request
from .recorder import ABORTED, FAILED, SERVED, Recorder, active
from .vocabulary import path_label

__all__ = [
    "aborted",
    "active",
    "error",
    "finished",
    "lock_acquired",
    "lock_attempted",
    "path_label",
    "started",
]


def started(recorder: Recorder, label: str) -> Request:
    """Record ``Started <label>``, preceded by ``Created`` in a new process; the
    request is in flight until ``finished``, ``error`` or ``aborted``."""
    return recorder.begin_request(label)


def finished(recorder: Recorder, request: Request, seconds: float, status: int) -> None:
    """The request was answered with ``status`` after ``seconds`` (``Finished``, worded
    by the recorder's writer)."""
    request.status, request.seconds = status, seconds
    recorder.end_request(request, SERVED)


def error(
    recorder: Recorder, request: Request, exc: BaseException, seconds: float, status: int
) -> None:
    """The request failed with ``exc`` and was answered with ``status``; its process goes on."""
    request.status, request.seconds = status, seconds
    recorder.end_request(request, FAILED, vocabulary.error(exc, seconds))


def aborted(recorder: Recorder, request: Request, exc: BaseException, seconds: float) -> None:
    """The request was ended by ``exc``, not an ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt``): recorded as an error; if the process now exits,
    the request is shown as what it died on."""
    request.seconds = seconds
    recorder.end_request(request, ABORTED, vocabulary.error(exc, seconds))


def lock_attempted(recorder: Recorder) -> None:
    recorder.record(vocabulary.lock_attempted())


def lock_acquired(recorder: Recorder, seconds: float) -> None:
    recorder.record(vocabulary.lock_acquired(seconds))
