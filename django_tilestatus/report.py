"""What the status page shows, built once and rendered as HTML, JSON or text.

``build_report`` turns the recent statuses into a ``Report``: the active
processes with a state each, and the newest messages. It also names the
processes to delete on read. The JSON and text renderings live here too, so
the three formats cannot drift apart. The functions here only compute: the
view reads Redis and deletes what they name.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .status import Status, nice_time, pid_indent

#: A process's state on the page.
BUSY, IDLE, GONE = "busy", "idle", "gone"
#: Distinct colours the HTML gives processes (``ts-c0`` ... in status.css).
COLOURS = 10

#: Messages written while a request is under way: they neither start nor end it.
_IN_REQUEST = ("Attempted cache lock", "Got cache lock in ")
_STARTED = "Started "
_DESTROYED = "Destroyed"


@dataclass(frozen=True)
class ReportSettings:
    """The ``TILESTATUS`` values a report depends on."""

    this_host: str
    hide_after: float
    purge_after: float
    busy_after: float
    messages: int


@dataclass(frozen=True)
class Line:
    """One message, as every format shows it."""

    host: str
    pid: int
    elapsed: float
    message: str
    #: The process's colour in the HTML, 0 to COLOURS - 1 (see ``colour_processes``).
    colour: int = 0

    @property
    def indent(self) -> int:
        """The original's column for this PID, 0-31."""
        return pid_indent(self.pid)

    @property
    def ago(self) -> str:
        return nice_time(self.elapsed)

    def as_dict(self) -> dict[str, Any]:
        elapsed = round(self.elapsed, 3)
        return {"host": self.host, "pid": self.pid, "elapsed": elapsed, "message": self.message}


@dataclass(frozen=True)
class ProcessRow(Line):
    """An active process: its newest message and what it is doing."""

    #: Unix time of the newest message.
    last_event: float = 0.0
    state: str = IDLE
    #: The path of the request under way, and for how long (when busy, or gone while busy).
    busy_path: str = ""
    busy_for: float = 0.0
    #: Busy on one request for longer than ``BUSY_AFTER``.
    slow: bool = False

    @property
    def state_text(self) -> str:
        if self.state == BUSY:
            return f"busy on {self.busy_path} for {int(self.busy_for)} s"
        if self.state == GONE and self.busy_path:
            # Killed mid-request: the path is the likeliest culprit.
            return f"gone while busy on {self.busy_path}"
        return self.state


@dataclass(frozen=True)
class Report:
    now: float
    processes: list[ProcessRow] = field(default_factory=list)
    messages: list[Line] = field(default_factory=list)

    @property
    def several_hosts(self) -> bool:
        """True when PIDs alone are ambiguous, so the host is shown beside them."""
        return len({line.host for line in [*self.processes, *self.messages]}) > 1

    def as_dict(self) -> dict[str, Any]:
        """The JSON format."""
        return {
            "now": round(self.now, 3),
            "processes": [row.as_dict() for row in self.processes],
            "messages": [line.as_dict() for line in self.messages],
        }

    def as_text(self) -> str:
        """The plain-text format, laid out as TileStache's StatusServer did."""
        # The original's own format strings, kept so the layout matches to the space.
        lines = ["%d" % self.now, "----------"]
        for index, row in enumerate(self.processes):
            lines.append("%3s. %5s %s, %s ago" % (index + 1, row.pid, row.message, row.ago))
        lines.append("----------")
        for line in self.messages:
            words = [" " * line.indent, str(line.pid), line.message + ",", line.ago, "ago"]
            lines.append(" ".join(words))
        return "\n".join(lines) + "\n"


def request_state(history: Sequence[Status]) -> tuple[str, str, float]:
    """``(state, path, seconds)`` from one process's messages, youngest first.

    A process is busy from ``Started <path>`` until any other message than
    the cache-lock ones that happen inside a request.
    """
    for status in history:
        if status.message.startswith(_STARTED):
            return BUSY, status.message[len(_STARTED) :], status.elapsed
        if status.message == _DESTROYED:
            return GONE, "", 0.0
        if not status.message.startswith(_IN_REQUEST):
            break
    return IDLE, "", 0.0


def colour_processes(keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """A colour per process: by rank in (host, PID) order, so the processes on
    one page differ as long as there are no more than COLOURS of them.

    status.js ranks the same way for the processes it adds.
    """
    return {key: rank % COLOURS for rank, key in enumerate(sorted(set(keys)))}


def build_report(
    processes: Sequence[Status],
    messages: Sequence[Status],
    settings: ReportSettings,
    why_dead: Callable[[int, float], str | None],
    now: float | None = None,
) -> tuple[Report, list[tuple[str, int]]]:
    """The report for ``get_recent()``'s lists, and the processes to delete.

    ``why_dead(pid, last_event)`` judges processes of this host (see
    ``liveness``); other hosts are judged by silence only. A process silent
    longer than PURGE_AFTER is deleted unless it still runs here.
    """
    now = time.time() if now is None else now
    history: dict[tuple[str, int], list[Status]] = defaultdict(list)
    for status in messages:
        history[(status.host, status.pid)].append(status)

    rows: list[ProcessRow] = []
    purge: list[tuple[str, int]] = []
    for newest in processes:
        key = (newest.host, newest.pid)
        local = newest.host == settings.this_host
        dead = local and why_dead(newest.pid, now - newest.elapsed) is not None
        if newest.elapsed > settings.purge_after and (dead or not local):
            purge.append(key)
        elif newest.elapsed <= settings.hide_after:
            state, path, busy_for = request_state(history[key] or [newest])
            rows.append(
                ProcessRow(
                    *key,
                    newest.elapsed,
                    newest.message,
                    last_event=now - newest.elapsed,
                    state=GONE if dead else state,
                    busy_path=path,
                    busy_for=busy_for,
                    slow=state == BUSY and not dead and busy_for > settings.busy_after,
                )
            )

    purged = set(purge)
    # Only the newest MESSAGES become lines: 1000 processes hold 20,000 messages.
    shown = (status for status in messages if (status.host, status.pid) not in purged)
    lines = [
        Line(status.host, status.pid, status.elapsed, status.message)
        for status in itertools.islice(shown, settings.messages)
    ]
    colours = colour_processes([(item.host, item.pid) for item in [*rows, *lines]])
    rows = [replace(row, colour=colours[row.host, row.pid]) for row in rows]
    lines = [replace(line, colour=colours[line.host, line.pid]) for line in lines]
    return Report(now, rows, lines), purge
