"""The events the app records, worded as TileStache's StatusServer worded them.

Call sites take the recorder once (``active()``, None when recording is off)
and pass it in, so a request reads the settings once, not once per event.
"""

from __future__ import annotations

import os

from . import conf, connection
from .recorder import Recorder, get_recorder
from .store import StatusStore

#: Longest tile path, in characters, kept in a message; a longer one is cut
#: and ends with "...". Paths are user input and lists are read by people.
MAX_PATH_LENGTH = 200
#: Longest exception text kept in an ``Error:`` message.
MAX_ERROR_LENGTH = 300


def _make_recorder() -> Recorder:
    config = conf.get_config()
    store: StatusStore | None = None

    def store_factory() -> StatusStore:
        nonlocal store
        if store is None:
            store = StatusStore(connection.get_client(), config.key_prefix, config.keep, config.ttl)
        return store

    return Recorder(store_factory, config.host, os.getpid())


def active() -> Recorder | None:
    """The process's recorder, or None when ``ENABLED`` is False."""
    if not conf.get_config().enabled:
        return None
    return get_recorder(_make_recorder)


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: str, limit: int) -> str:
    """One printable line of at most ``limit`` characters (plus "...").

    Whatever Python does not count as printable is shown as an escape:
    control characters, line separators, but also format characters such as
    bidirectional overrides, which would make a status line read differently
    from what was requested, and unassigned code points.
    """
    if not text.isprintable():
        text = "".join(map(_escape, text))
    return text if len(text) <= limit else text[:limit] + "..."


def path_label(path: str) -> str:
    """How a tile path appears in messages: ``/`` + path, cleaned and cut."""
    return clean("/" + path, MAX_PATH_LENGTH)


def started(recorder: Recorder, label: str) -> None:
    """Record ``Started <label>``, preceded by ``Created`` in a new process."""
    if not recorder.created:
        recorder.created = True
        recorder.record("Created")
    recorder.record("Started " + label)


def finished(recorder: Recorder, label: str, seconds: float) -> None:
    recorder.record(f"Finished {label} in {seconds:.3f} seconds")


def error(recorder: Recorder, exc: BaseException, seconds: float) -> None:
    recorder.record(f"Error: {clean(str(exc), MAX_ERROR_LENGTH)} after {seconds:.3f} seconds")


def lock_attempted(recorder: Recorder) -> None:
    recorder.record("Attempted cache lock")


def lock_acquired(recorder: Recorder, seconds: float) -> None:
    recorder.record(f"Got cache lock in {seconds:.3f} seconds")
