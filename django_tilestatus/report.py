"""What the status page shows, computed once and rendered as HTML, JSON or text.

``build_report`` turns one bounded read of the store (a ``Snapshot``) into a
``Report``: the active processes with a state each, and the newest messages.
Everything a format shows is computed here (state and its wording, slow,
colour, indentation, how long ago), so the HTML template, the JSON and the
text cannot drift apart, and the page's script only renders. It also names
the processes to delete on read, by the one ``DeathPolicy``; the view does the
deleting.

The tile statistics ("Tiles") are computed by ``tile_stats``; a report carries
them as they come.

Core module: imports the standard library, ``policy``, ``store`` (its data
classes), ``tile_stats`` and ``vocabulary`` only.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from .policy import DeathPolicy
from .store import Snapshot
from .tile_stats import TilesReport
from .vocabulary import Kind, clean, nice_time, parse

#: A process's state on the page: requests under way, none, died without a
#: word (killed), or exited cleanly (recorded ``Destroyed``).
BUSY, IDLE, GONE, EXITED = "busy", "idle", "gone", "exited"
STATES = (BUSY, IDLE, GONE, EXITED)
#: Distinct colours the HTML gives processes (``ts-c0`` ... in status.css).
COLOURS = 10
#: Most process rows a page lists. Beyond it, busy, slow and gone processes
#: are listed first, then the most recently seen; the rest are counted per host
#: and state, so the page stays small whatever the registry holds.
MAX_PROCESS_ROWS = 100
#: Newest messages of each active process read to tell its state: at most
#: ``Got cache lock``, ``Attempted cache lock``, ``Started``.
STATE_HEAD = 3
#: Seconds a host's newest event may lie in the future before its clock is
#: flagged as ahead (hosts need synchronised clocks).
CLOCK_AHEAD_AFTER = 2.0
#: Most long-silent processes deleted by one read; the next read goes on.
MAX_PURGE_PER_READ = 1000


@dataclass(frozen=True)
class ReportSettings:
    """The ``TILESTATUS`` values a report depends on."""

    this_host: str
    hide_after: float
    purge_after: float
    busy_after: float
    messages: int
    max_rows: int = MAX_PROCESS_ROWS

    def policy(self) -> DeathPolicy:
        """The page's death policy: a dead process stays listed PURGE_AFTER seconds."""
        return DeathPolicy(self.this_host, self.purge_after, self.purge_after)


@functools.lru_cache(maxsize=4096)
def pid_indent(pid: int) -> int:
    """An indentation, 0 to 31, from the MD5 of the decimal PID, as the original."""
    return int(hashlib.md5(str(pid).encode("ascii"), usedforsecurity=False).hexdigest(), 16) % 32


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
        return {
            "host": self.host,
            "pid": self.pid,
            "elapsed": round(self.elapsed, 3),
            "message": self.message,
            "colour": self.colour,
            "indent": self.indent,
            "ago": self.ago + " ago",
        }


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

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "last_event": round(self.last_event, 6),
            "state": self.state,
            "state_text": self.state_text,
            "slow": self.slow,
            "busy_path": self.busy_path,
            "busy_for": round(self.busy_for, 3),
        }


@dataclass(frozen=True)
class Hidden:
    """Processes of one host and state left out of the table (see ``MAX_PROCESS_ROWS``)."""

    host: str
    state: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "state": self.state, "count": self.count}


@dataclass(frozen=True)
class Report:
    now: float
    processes: list[ProcessRow] = field(default_factory=list)
    messages: list[Line] = field(default_factory=list)
    #: Active processes not listed, counted per host and state.
    hidden: list[Hidden] = field(default_factory=list)
    #: Hosts whose newest event lies in the future: their clock is ahead of this one.
    clock_ahead: list[str] = field(default_factory=list)
    #: The ``?host=`` the report is limited to, if any.
    host: str | None = None
    #: Active processes per state, listed or not.
    counts: dict[str, int] = field(default_factory=dict)
    #: The tile statistics of the last hour, when read (see ``tile_stats``).
    tiles: TilesReport | None = None

    @property
    def several_hosts(self) -> bool:
        """True when PIDs alone are ambiguous, so the host is shown beside them."""
        return len({line.host for line in [*self.processes, *self.messages]}) > 1

    @property
    def read_at(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=timezone.utc)

    @property
    def hidden_total(self) -> int:
        return sum(item.count for item in self.hidden)

    def as_dict(self) -> dict[str, Any]:
        """The JSON format: every value the page shows, ready to render."""
        return {
            "now": round(self.now, 3),
            "read_at": self.read_at.strftime("%H:%M:%S UTC"),
            "read_at_iso": self.read_at.isoformat(),
            "host": self.host,
            "several_hosts": self.several_hosts,
            "counts": self.counts,
            "processes": [row.as_dict() for row in self.processes],
            "hidden": [item.as_dict() for item in self.hidden],
            "clock_ahead": self.clock_ahead,
            "messages": [line.as_dict() for line in self.messages],
            "tiles": self.tiles.as_dict() if self.tiles is not None else None,
        }

    def as_text(self) -> str:
        """The plain-text format, laid out as TileStache's StatusServer did."""
        # The original's own format strings, kept so the layout matches to the space.
        lines = ["%d" % self.now, "----------"]
        for index, row in enumerate(self.processes):
            lines.append("%3s. %5s %s, %s ago" % (index + 1, row.pid, row.message, row.ago))
        if self.hidden:
            lines.append(f"     ({self.hidden_total} more processes not listed)")
        lines.append("----------")
        for line in self.messages:
            words = [" " * line.indent, str(line.pid), line.message + ",", line.ago, "ago"]
            lines.append(" ".join(words))
        if self.tiles is not None and self.tiles.layers:  # else exactly the original
            lines += ["----------", *self.tiles.text_lines()]
        return "\n".join(lines) + "\n"


def request_state(entries: Sequence[tuple[float, str]], now: float) -> tuple[str, str, float]:
    """``(state, path, seconds)`` from one process's ``(unix time, message)``, newest first.

    A process is busy from ``Started <path>`` until any other message than
    those written inside a request; it has exited once it says ``Destroyed``.
    """
    for stamp, message in entries:
        parsed = parse(message)
        if parsed.kind is Kind.STARTED:
            return BUSY, parsed.path, max(0.0, now - stamp)
        if parsed.kind is Kind.DESTROYED:
            return EXITED, "", 0.0
        if not parsed.kind.inside_request:
            break
    return IDLE, "", 0.0


def colour_processes(keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """A colour per process: by rank in (host, PID) order, so the processes on
    one page differ as long as there are no more than COLOURS of them."""
    return {key: rank % COLOURS for rank, key in enumerate(sorted(set(keys)))}


def _priority(row: ProcessRow) -> int:
    """Which rows a crowded page keeps first: slow, busy, gone, then the rest."""
    if row.slow:
        return 0
    if row.state == BUSY:
        return 1
    return 2 if row.state == GONE else 3


def build_report(
    snapshot: Snapshot, settings: ReportSettings, policy: DeathPolicy | None = None
) -> tuple[Report, list[tuple[str, int]]]:
    """The report for one read, and the processes to delete.

    ``policy`` judges which processes are dead (``settings.policy()`` unless
    given); processes of other hosts are judged by silence only.
    """
    policy = settings.policy() if policy is None else policy
    now = snapshot.now
    rows: list[ProcessRow] = []
    purge: list[tuple[str, int]] = []
    ahead: set[str] = set()
    for log in snapshot.processes:
        elapsed = now - log.last_seen
        if (
            elapsed > settings.purge_after
            and len(purge) < MAX_PURGE_PER_READ
            and policy.why_delete(log.host, log.pid, log.last_seen, now) is not None
        ):
            purge.append((log.host, log.pid))
            continue
        if elapsed > settings.hide_after or not log.entries:
            continue
        if elapsed < -CLOCK_AHEAD_AFTER:
            ahead.add(log.host)
        state, path, busy_for = request_state(log.entries, now)
        dead = policy.why_dead(log.host, log.pid, log.last_seen, now) is not None
        if dead and state != EXITED:
            state = GONE
        rows.append(
            ProcessRow(
                log.host,
                log.pid,
                max(0.0, elapsed),
                clean(log.entries[0][1]),
                last_event=log.last_seen,
                state=state,
                busy_path=clean(path),
                busy_for=busy_for if state in (BUSY, GONE) else 0.0,
                slow=state == BUSY and busy_for > settings.busy_after,
            )
        )
    counts = dict.fromkeys(STATES, 0) | Counter(row.state for row in rows)
    rows, hidden = _crowded_out(rows, settings.max_rows)

    purged = set(purge)
    shown = heapq.nlargest(
        settings.messages,
        (
            (stamp, log.host, log.pid, message)
            for log in snapshot.processes
            if (log.host, log.pid) not in purged
            for stamp, message in log.entries
        ),
        key=lambda item: item[0],
    )
    lines = [
        Line(host, pid, max(0.0, now - stamp), clean(message))
        for stamp, host, pid, message in shown
    ]
    colours = colour_processes([(item.host, item.pid) for item in [*rows, *lines]])
    rows = [replace(row, colour=colours[row.host, row.pid]) for row in rows]
    lines = [replace(line, colour=colours[line.host, line.pid]) for line in lines]
    report = Report(now, rows, lines, hidden, sorted(ahead), counts=counts)
    return report, purge


def _crowded_out(rows: list[ProcessRow], limit: int) -> tuple[list[ProcessRow], list[Hidden]]:
    """At most ``limit`` rows, youngest first, and counts of the rest per host and state."""
    if len(rows) <= limit:
        return rows, []
    ranked = sorted(range(len(rows)), key=lambda index: (_priority(rows[index]), index))
    kept = sorted(ranked[:limit])
    left = Counter((rows[index].host, rows[index].state) for index in ranked[limit:])
    hidden = [Hidden(host, state, count) for (host, state), count in sorted(left.items())]
    return [rows[index] for index in kept], hidden
