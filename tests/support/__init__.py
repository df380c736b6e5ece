"""Helpers shared by the tests and the benchmarks (fixtures stay in conftest.py).

One module per concern, each importable on its own; the ones the benchmarks use
(``gunicorn``, ``redis_server``, ``http``, ``processes`` and this package) need
neither pytest nor Django settings:

- this package: ``ROOT``, ``free_port`` and ``wait_until`` (the one polling helper:
  a deadline, never a fixed sleep), used by all the rest;
- ``processes``: child PIDs from /proc, and the PID of a process that has exited;
- ``http``: the one HTTP client (``request`` -> ``Answer``), and waiting for a server
  to answer;
- ``gunicorn``: the one gunicorn launcher (``GunicornServer``);
- ``redis_server``: the one private ``redis-server`` launcher (``RedisServer``);
- ``real_redis``: the shared test Redis (``REAL_REDIS_URL``), skipped or failed (CI);
- ``counting``: a redis-py connection that counts connections, round trips and commands;
- ``statistics``: counting a request's statistics by hand, and a recorder's queue length;
- ``cold``: tile paths this process has not served, so each one is rendered;
- ``status``: writing and reading recorded statuses, and what must hold of them;
- ``example_project``: the example project as the end-to-end tests serve it (its
  TileStache config, its demo tiles, the lines its workers log).
- ``docs``: the file blocks of a documentation page (``<!-- file: path -->``), written
  out as a reader would save them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: The repository's root: where gunicorn and ``manage.py`` run from.
ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WaitTimeoutError(AssertionError):
    """What a test waited for did not happen before its deadline."""


def wait_until(
    check: Callable[[], T],
    seconds: float,
    interval: float = 0.1,
    *,
    what: str | Callable[[], str] = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    Tests poll with a deadline instead of sleeping a fixed time: they go on as soon
    as what they wait for has happened, and a slow machine only makes them slower.
    After ``seconds`` it raises ``WaitTimeoutError`` (an ``AssertionError``, so the test
    fails) naming ``what`` was waited for (a string, or a function giving one, e.g.
    a server's log) and the last value seen. Exceptions of the ``ignore`` types
    count as "not yet" (a server still starting refuses connections).
    """
    deadline = time.monotonic() + seconds
    last: object = None
    while True:
        try:
            result = check()
        except ignore as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            name = getattr(check, "__name__", "")
            subject = described or (f"{name}()" if name and name != "<lambda>" else "the condition")
            raise WaitTimeoutError(
                f"{subject}: not within {seconds:g} s (last seen: {last!r:.2000})"
            )
        time.sleep(interval)
