"""``Destroyed`` when a process is told to stop (SIGTERM), whatever server runs it.

A clean exit records ``Destroyed`` through ``atexit``. Not every stop is such an
exit: uvicorn restores the default SIGTERM action after its graceful shutdown and
raises the signal again, so the process ends without running ``atexit`` (and shows
``gone``, as if killed); ``runserver`` leaves SIGTERM at its default, which ends the
process at once. So the app handles SIGTERM itself, chaining whatever handler was
installed before it:

- a server's own handler (uvicorn's, gunicorn's workers') is still called: the server
  stops as it would, finishing the requests in flight, and ``Destroyed`` is recorded
  after the last of them (at once when none is);
- with the default action, ``Destroyed`` is recorded and sent, and the signal is raised
  again with the default action, so the process ends as it would have;
- an ignored SIGTERM stays ignored.

Installed from the main thread only (Python's rule for signal handlers), when the app
is ready: under gunicorn, in each worker after it installed its own handlers.

Core module: imports the standard library and ``recorder`` only.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from . import recorder


class _ChainedHandler:
    """The app's SIGTERM handler, holding the one it replaced."""

    def __init__(self, previous: Any):
        self.previous = previous

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        previous = self.previous
        if callable(previous):
            recorder.say_terminating()
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            recorder.say_destroyed_now()
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)


def install() -> bool:
    """Handle SIGTERM as above; False where it cannot be (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if isinstance(previous, _ChainedHandler):
        return True
    signal.signal(signal.SIGTERM, _ChainedHandler(previous))
    return True
