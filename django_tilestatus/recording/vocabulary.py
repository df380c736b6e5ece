"""Every message the app writes, and how a message is read back.

The words are TileStache StatusServer's, so habits carry over (``Started
/osm/15/5255/12664.png``, ``Got cache lock in 0.001 seconds``...). This is the
only module that knows them: ``recorder`` writes messages with the functions
here, ``reading.report`` reads them back with ``parse``; ``nice_time`` words a
duration as the original did, ``phase_text`` an in-flight request's phase.

An event kind is its words here (a function writing them and, to be read back,
its ``Kind`` and its case in ``parse``) plus the ``Recorder`` method that
records it (``finish_request``, ``fail_request``, ``abort_request``,
``lock_attempted``, ``lock_acquired``...).

Core module: imports the standard library and ``inflight``'s phase codes only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum

from .inflight import READING, RENDERING, STARTING, WAITING_LOCK, WAITING_MAPNIK

#: Longest tile path, in characters, kept in a message; a longer one is cut
#: and ends with "...". Paths are user input and lists are read by people.
MAX_PATH_LENGTH = 200
#: Longest exception text kept in an ``Error:`` message.
MAX_ERROR_LENGTH = 300
#: Longest text kept of any message, written (``update_status``) or read back
#: (a message another program stored under the prefix).
MAX_MESSAGE_LENGTH = 500


class Kind(Enum):
    """What a message says happened."""

    CREATED = "created"
    STARTED = "started"
    FINISHED = "finished"
    ERROR = "error"
    LOCK_ATTEMPTED = "lock attempted"
    LOCK_ACQUIRED = "lock acquired"
    LOCK_BROKEN = "lock broken"
    DESTROYED = "destroyed"
    #: Anything else: a project's own ``update_status`` text.
    OTHER = "other"


# -- writing ---------------------------------------------------------------


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """One printable line of at most ``limit`` characters (plus "...").

    Whatever Python does not count as printable is shown as an escape:
    control characters, line separators, but also format characters such as
    bidirectional overrides, which would make a status line read differently
    from what was requested, and unassigned code points.
    """
    # Escapes only lengthen a text, so one character past the limit is enough
    # to know whether it is cut: a 5 MB text is not escaped whole.
    text = text[: limit + 1]
    if not text.isprintable():
        text = "".join(map(_escape, text))
    return text if len(text) <= limit else text[:limit] + "..."


def path_label(path: str) -> str:
    """How a tile path appears in messages: ``/`` + path, cleaned and cut."""
    label = "/" + path
    if len(label) <= MAX_PATH_LENGTH and label.isprintable():  # every tile: nothing to do
        return label
    return clean(label, MAX_PATH_LENGTH)


def created() -> str:
    return "Created"


def started(label: str) -> str:
    return "Started " + label


def finished(label: str, seconds: float) -> str:
    return f"Finished {label} in {seconds:.3f} seconds"


def error(exc: BaseException, seconds: float) -> str:
    """``Error: <text> after N seconds``; the text names the exception when it has none.

    An exception that is not an ``Exception`` ends the process or the request
    from outside (gunicorn's timeout raises ``SystemExit: 1`` from its SIGABRT
    handler; Ctrl-C raises ``KeyboardInterrupt``): its name always leads, since
    its text alone ("1") says nothing.
    """
    text = str(exc)
    if not isinstance(exc, Exception):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    text = text or type(exc).__name__
    return f"Error: {clean(text, MAX_ERROR_LENGTH)} after {seconds:.3f} seconds"


def lock_attempted() -> str:
    return "Attempted cache lock"


def lock_acquired(seconds: float) -> str:
    return f"Got cache lock in {seconds:.3f} seconds"


def lock_broken(layer: str, zoom: int, column: int, row: int, pid: int) -> str:
    """A waiter broke the metatile lock a dead process held (``serving.locks``)."""
    metatile = clean(f"{layer} {zoom}/{column}/{row}", MAX_PATH_LENGTH)
    return f"Broke the lock of metatile {metatile} held by dead PID {pid}"


def destroyed() -> str:
    return "Destroyed"


# -- what an in-flight request is doing ----------------------------------------

#: How each phase of ``inflight`` reads on the page.
_PHASES = {
    STARTING: "starting",
    READING: "reading the cache",
    WAITING_LOCK: "waiting for the cache lock",
    RENDERING: "rendering",
    WAITING_MAPNIK: "waiting for the Mapnik lock",
}


def phase_text(phase: str, lock: str = "", seconds: float = 0.0) -> str:
    """``waiting for the cache lock on demo 3/0/0 for 4 s``, ``rendering for 12 s``..."""
    text = _PHASES.get(phase, _PHASES[STARTING])
    if phase == WAITING_LOCK and lock:
        text += " on " + clean(lock, MAX_PATH_LENGTH)
    return f"{text} for {int(max(0.0, seconds))} s"


# -- durations -----------------------------------------------------------


def nice_time(seconds: float) -> str:
    """Format a time in seconds to a string like "5 minutes", as the original.

    Counts of one are singular ("1 minute"); a negative time (a clock ahead)
    reads as "moments".
    """
    if seconds < 15:
        return "moments"
    for limit, size, unit in _UNITS:
        if seconds < limit:
            count = int(seconds / size)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    count = int(seconds / 2592000.0)
    return f"{count} month" if count == 1 else f"{count} months"


#: ``nice_time``'s steps: below ``limit`` seconds, count in ``size`` seconds.
_UNITS = (
    (90, 1.0, "second"),
    (60 * 60 * 1.5, 60.0, "minute"),
    (24 * 60 * 60 * 1.5, 3600.0, "hour"),
    (7 * 24 * 60 * 60 * 1.5, 86400.0, "day"),
    (30 * 24 * 60 * 60 * 1.5, 604800.0, "week"),
)


# -- reading ---------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What one message says: its kind, the tile path and seconds it names, if any."""

    kind: Kind
    path: str = ""
    seconds: float | None = None


_FINISHED = re.compile(r"Finished (?P<path>.*) in (?P<seconds>[0-9.]+) seconds\Z", re.DOTALL)
_ERROR = re.compile(r"Error: .* after (?P<seconds>[0-9.]+) seconds\Z", re.DOTALL)
_ACQUIRED = re.compile(r"Got cache lock in (?P<seconds>[0-9.]+) seconds\Z")
_BROKEN = re.compile(
    r"Broke the lock of metatile (?P<lock>.*) held by dead PID [0-9]+\Z", re.DOTALL
)
_EXACT = {
    created(): Kind.CREATED,
    lock_attempted(): Kind.LOCK_ATTEMPTED,
    destroyed(): Kind.DESTROYED,
}


def _seconds(text: str) -> float | None:
    """The seconds a message names, or None for digits and dots that are no number
    (``"."``, ``"1.2.3"``): any text may be stored under the prefix."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse(message: str) -> Parsed:
    """Read ``message`` back; ``Kind.OTHER`` for text the app did not word."""
    exact = _EXACT.get(message)
    if exact is not None:
        return Parsed(exact)
    if message.startswith("Started "):
        return Parsed(Kind.STARTED, message[len("Started ") :])
    match = _FINISHED.match(message)
    if match:
        return Parsed(Kind.FINISHED, match["path"], _seconds(match["seconds"]))
    match = _ERROR.match(message)
    if match:
        return Parsed(Kind.ERROR, "", _seconds(match["seconds"]))
    match = _ACQUIRED.match(message)
    if match:
        return Parsed(Kind.LOCK_ACQUIRED, "", _seconds(match["seconds"]))
    match = _BROKEN.match(message)
    if match:
        return Parsed(Kind.LOCK_BROKEN, match["lock"])
    return Parsed(Kind.OTHER)
