"""What the status page shows, computed once and rendered as HTML, JSON or text.

``build_report`` turns one bounded read of the store (a ``Snapshot``) into a
``Report``: the active processes with a state each, and the newest messages.
A process's state comes from its in-flight requests (``inflight``), which
make it busy, liveness (or silence, for another host or another PID namespace), which
makes it gone,
and its newest message: a ``Destroyed`` makes it exited, or gone while busy
if requests are still in flight. The rows listed (at most
``MAX_PROCESS_ROWS``) get their newest message and counts through
``read_heads``; the others are counted per host and state, where "exited" is
counted only where known (their messages were read) and a dead process not
known to have exited counts as "gone". The state is decided in one place
(``process_state``), once the newest message known is settled: the
snapshot's, or for a listed row whose messages it did not hold, the head read.
Everything a format shows is computed here (state and its wording, slow,
colour, indentation, how long ago), so the HTML template, the JSON and the
text cannot drift apart, and the page's script only renders. It also names
the processes to delete on read, by the one ``DeathPolicy``;
``reading.current`` does the deleting.

The tile statistics ("Tiles") are computed by ``statistics.tiles_report``; a
report carries them as they come.

Core module: imports the standard library, ``recording.inflight`` (reading
entries back), ``recording.vocabulary``, ``reading.liveness`` (the
``DeathPolicy``), ``storage.interface`` (its data classes) and
``statistics.tiles_report`` (its ``TilesReport``) only.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from ..recording import inflight
from ..recording.inflight import Entry, Stack
from ..recording.vocabulary import Kind, clean, nice_time, parse, phase_text
from ..statistics.tiles_report import TilesReport
from ..storage.interface import Head, ProcessLog, Snapshot
from .liveness import DeathPolicy
from .locks import LockIndex, LockState

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
#: Seconds a host's newest event may lie in the future before its clock is
#: flagged as ahead (hosts need synchronised clocks).
CLOCK_AHEAD_AFTER = 2.0
#: Longest thread name shown.
MAX_THREAD_NAME = 60
#: Most long-silent processes deleted by one read; the next read goes on.
MAX_PURGE_PER_READ = 1000
#: Stack snapshots one report sends at most (JSON and HTML): those of the first
#: requests that have one, in row order (slow and gone processes come first). A
#: process's others are sent on demand (``Report.with_stacks``, ``?stacks=``): 100
#: busy processes of 32 requests with 8 KB stacks would otherwise make 26 MB.
MAX_STACKS_SENT = 20
#: Requests in flight listed per process row (its oldest: the likeliest stuck); the
#: rest are counted (``ProcessRow.requests_not_listed``) and listed on demand.
MAX_REQUESTS_LISTED = 5


@dataclass(frozen=True)
class ReportSettings:
    """The ``TILESTATUS`` values a report depends on."""

    this_host: str
    hide_after: float
    purge_after: float
    busy_after: float
    messages: int
    max_rows: int = MAX_PROCESS_ROWS
    #: The reading process's PID namespace (``liveness.pid_namespace()``); None: unknown.
    pid_namespace: int | None = None

    def policy(self, namespaces: Mapping[tuple[str, int], int] | None = None) -> DeathPolicy:
        """The page's death policy: a dead process stays listed PURGE_AFTER seconds.

        ``namespaces`` are the PID namespaces processes recorded
        (``StatusStore.namespaces``): one of another namespace is judged by silence.
        """
        return DeathPolicy(
            self.this_host,
            self.purge_after,
            self.purge_after,
            namespace=self.pid_namespace,
            namespaces=namespaces or {},
        )


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
class RequestRow:
    """One request in flight, as every format shows it."""

    path: str
    #: Seconds since it started, and since its current phase began.
    running_for: float
    phase: str
    phase_for: float
    lock: str = ""
    #: Running longer than ``BUSY_AFTER``.
    slow: bool = False
    #: Its process died with it in flight.
    gone: bool = False
    #: The stack snapshot, innermost frame last; None until taken.
    stack: Stack | None = None
    #: Taken, but left out of this report's formats (see ``MAX_STACKS_SENT``).
    stack_left_out: bool = False
    #: The thread serving it (``ThreadPoolExecutor-0_3``): a process's requests apart.
    thread: str = ""
    #: It holds the cache lock of ``lock`` (since ``lock_since``), as its entry says.
    held: bool = False
    lock_since: float | None = None
    #: Its lock and, waiting, the lock's holder (see ``reading.locks``).
    lock_state: LockState | None = None

    @property
    def phase_text(self) -> str:
        return phase_text(self.phase, self.lock, self.phase_for)

    @property
    def lock_text(self) -> str:
        """``waiting 120 ms for metatile world 10/8/4 held by vm PID 4321 (rendering for
        2 s)``, ``holding metatile world 10/8/4 for 2 s, 3 waiting``, or ""."""
        return self.lock_state.text if self.lock_state is not None else ""

    @property
    def _doing(self) -> str:
        state = self.lock_state
        if state is None:
            return self.phase_text
        return state.text if not state.held else f"{self.phase_text}, {state.text}"

    @property
    def text(self) -> str:
        """``gone while busy on <path>``, or ``<path>, rendering for 12 s, running 14 s``
        with ``, in <thread>`` when its thread is known (a process's requests apart)."""
        if self.gone:
            return f"gone while busy on {self.path}"
        text = f"{self.path}, {self._doing}, running {int(self.running_for)} s"
        return f"{text}, in {self.thread}" if self.thread else text

    @property
    def stack_text(self) -> str:
        """The stack as Python prints a traceback, innermost last."""
        lines = []
        for frame in self.stack or ():
            lines.append(f'  File "{frame.file}", line {frame.line}, in {frame.function}')
            if frame.source:
                lines.append(f"    {frame.source}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "thread": self.thread,
            "text": self.text,
            "running_for": round(self.running_for, 3),
            "phase": self.phase,
            "phase_text": self.phase_text,
            "lock": None if self.lock_state is None else self.lock_state.as_dict(),
            "slow": self.slow,
            "gone": self.gone,
            # The stack once, as text: null until taken, or when left out of this
            # document (``stack_left_out``: ask for the process's stacks).
            "stack_taken": self.stack is not None,
            "stack_left_out": self.stack_left_out,
            "stack_text": None if self.stack is None or self.stack_left_out else self.stack_text,
        }


@dataclass(frozen=True)
class ProcessRow(Line):
    """An active process: its newest message and what it is doing."""

    #: Unix time of the newest message.
    last_event: float = 0.0
    state: str = IDLE
    #: Its requests in flight, oldest first (when busy, or gone while busy).
    requests: tuple[RequestRow, ...] = ()
    #: Requests served and failed since the process started (None: not read).
    served: int | None = None
    failed: int | None = None
    #: How many of ``requests`` the formats list (None: all; see ``Report.with_stacks``).
    list_limit: int | None = None

    @property
    def listed_requests(self) -> tuple[RequestRow, ...]:
        """The requests the formats list, oldest first."""
        return self.requests if self.list_limit is None else self.requests[: self.list_limit]

    @property
    def requests_not_listed(self) -> int:
        return len(self.requests) - len(self.listed_requests)

    @property
    def slow(self) -> bool:
        """Busy on one request for longer than ``BUSY_AFTER``."""
        return self.state == BUSY and any(request.slow for request in self.requests)

    @property
    def busy_path(self) -> str:
        """The path of the oldest request in flight."""
        return self.requests[0].path if self.requests else ""

    @property
    def busy_for(self) -> float:
        return self.requests[0].running_for if self.requests else 0.0

    @property
    def stacks_left_out(self) -> int:
        """Its listed requests whose stack was taken but is left out of this report."""
        return sum(1 for request in self.listed_requests if request.stack_left_out)

    @property
    def lock_waiters(self) -> int:
        """Requests (of any process) waiting for the metatile locks its requests hold."""
        return sum(r.lock_state.waiters for r in self.requests if r.lock_state is not None)

    @property
    def state_text(self) -> str:
        if self.state == BUSY:
            if len(self.requests) == 1:
                return f"busy on {self.busy_path} for {int(self.busy_for)} s"
            return f"busy with {len(self.requests)} requests"
        if self.state == GONE and self.requests:
            # Died mid-request: the paths are the likeliest culprits.
            return "; ".join(request.text for request in self.requests)
        return self.state

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "last_event": round(self.last_event, 6),
            "last_seen": round(self.last_event, 6),
            "state": self.state,
            "state_text": self.state_text,
            "slow": self.slow,
            "in_flight": len(self.requests),
            "requests": [request.as_dict() for request in self.listed_requests],
            "requests_not_listed": self.requests_not_listed,
            "served": self.served,
            "failed": self.failed,
            "busy_path": self.busy_path,
            "busy_for": round(self.busy_for, 3),
            "stacks_left_out": self.stacks_left_out,
            "lock_waiters": self.lock_waiters,
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
    #: Active processes per state, listed or not ("exited" only where known).
    counts: dict[str, int] = field(default_factory=dict)
    #: The tile statistics of the last hour, when read (see ``statistics.tiles_report``).
    tiles: TilesReport | None = None
    #: Processes with requests in flight, read or not (see ``storage.interface.MAX_BUSY_READ``).
    busy_total: int = 0
    #: Entries in the store that could not be read and were skipped (keys of another
    #: type, values that do not parse); the rest of the report stands.
    skipped: int = 0

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

    @property
    def skipped_text(self) -> str:
        """The line saying what was skipped, or ``""``."""
        if not self.skipped:
            return ""
        entries = "entry" if self.skipped == 1 else "entries"
        return f"{self.skipped} {entries} in Redis could not be read and were skipped"

    @property
    def stacks_left_out(self) -> int:
        return sum(row.stacks_left_out for row in self.processes)

    def with_stacks(
        self,
        limit: int = MAX_STACKS_SENT,
        process: tuple[str, int] | None = None,
        listed: int = MAX_REQUESTS_LISTED,
    ) -> Report:
        """The report as the formats send it: each row lists its ``listed`` oldest
        requests, and the stacks of the first ``limit`` of them that have one are sent,
        in row order; ``process`` lists every request and sends every stack."""
        rows, sent = [], 0
        for row in self.processes:
            everything = (row.host, row.pid) == process
            shown = len(row.requests) if everything else listed
            requests = []
            for index, request in enumerate(row.requests):
                left_out = False
                if request.stack is not None and not everything and index < shown:
                    left_out = sent >= limit
                    sent += 1
                if left_out != request.stack_left_out:
                    request = replace(request, stack_left_out=left_out)
                requests.append(request)
            limit_row = None if everything else listed
            rows.append(replace(row, requests=tuple(requests), list_limit=limit_row))
        return replace(self, processes=rows)

    def as_dict(self) -> dict[str, Any]:
        """The JSON format: every value the page shows, ready to render."""
        return {
            "now": round(self.now, 3),
            "read_at": self.read_at.strftime("%H:%M:%S UTC"),
            "read_at_iso": self.read_at.isoformat(),
            "host": self.host,
            "several_hosts": self.several_hosts,
            "counts": self.counts,
            "busy_total": self.busy_total,
            "processes": [row.as_dict() for row in self.processes],
            "hidden": [item.as_dict() for item in self.hidden],
            "clock_ahead": self.clock_ahead,
            "messages": [line.as_dict() for line in self.messages],
            "tiles": self.tiles.as_dict() if self.tiles is not None else None,
            "skipped": self.skipped,
            "skipped_text": self.skipped_text,
            "stacks_left_out": self.stacks_left_out,
        }

    def lock_lines(self) -> list[str]:
        """The text format's metatile locks (none: the original layout is kept)."""
        found = [
            f"{row.pid:>5} {request.path} {request.lock_text}"
            for row in self.processes
            for request in row.requests
            if request.lock_state is not None
        ]
        return ["----------", "metatile locks:", *found] if found else []

    def as_text(self) -> str:
        """The plain-text format, laid out as TileStache's StatusServer did."""
        # The original's own format strings, kept so the layout matches to the space.
        lines = ["%d" % self.now, "----------"]
        for index, row in enumerate(self.processes):
            lines.append("%3s. %5s %s, %s ago" % (index + 1, row.pid, row.message, row.ago))
        if self.hidden:
            lines.append(f"     ({self.hidden_total} more processes not listed)")
        if self.skipped:
            lines.append(f"     ({self.skipped_text})")
        lines.append("----------")
        for line in self.messages:
            words = [" " * line.indent, str(line.pid), line.message + ",", line.ago, "ago"]
            lines.append(" ".join(words))
        lines += self.lock_lines()
        if self.tiles is not None and self.tiles.layers:  # else exactly the original
            lines += ["----------", *self.tiles.text_lines()]
        return "\n".join(lines) + "\n"


def says_destroyed(newest: tuple[float, str] | None) -> bool:
    """Whether a newest message ``(unix time, message)`` is ``Destroyed``."""
    return newest is not None and parse(newest[1]).kind is Kind.DESTROYED


def newest_says_destroyed(entries: Sequence[tuple[float, str]]) -> bool:
    """Whether a process's newest message (entries newest first) is ``Destroyed``."""
    return says_destroyed(entries[0] if entries else None)


def colour_processes(keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """A colour per process: by rank in (host, PID) order, so the processes on
    one page differ as long as there are no more than COLOURS of them."""
    return {key: rank % COLOURS for rank, key in enumerate(sorted(set(keys)))}


def _in_flight_entries(raw: Sequence[Any]) -> list[Entry]:
    """The in-flight entries that decode, oldest first, at most ``MAX_IN_FLIGHT``."""
    entries: list[Entry] = [e for e in map(inflight.decode, raw) if e is not None]
    entries.sort(key=lambda entry: entry.started)
    return entries[: inflight.MAX_IN_FLIGHT]


def _request_rows(
    entries: Sequence[Entry], now: float, busy_after: float, gone: bool
) -> tuple[RequestRow, ...]:
    return tuple(
        RequestRow(
            path=clean(entry.path),
            running_for=max(0.0, now - entry.started),
            phase=entry.phase,
            phase_for=max(0.0, now - entry.since),
            lock=clean(entry.lock),
            slow=not gone and now - entry.started > busy_after,
            gone=gone,
            stack=entry.stack,
            thread=clean(entry.thread, MAX_THREAD_NAME),
            held=entry.held,
            lock_since=entry.lock_since,
        )
        for entry in entries
    )


def request_rows(
    raw: Sequence[Any], now: float, busy_after: float, gone: bool
) -> tuple[RequestRow, ...]:
    """The in-flight requests of one process, oldest first, from the store's values."""
    return _request_rows(_in_flight_entries(raw), now, busy_after, gone)


def process_state(dead: bool, busy: bool, destroyed: bool) -> str:
    """A process's state: the one place it is decided.

    ``dead``: liveness (or silence) says so; ``busy``: it has requests in
    flight; ``destroyed``: its newest message is ``Destroyed``. Having said so
    itself, it exited, or is gone while busy on what is still in flight.
    """
    if destroyed:
        return GONE if busy else EXITED
    if dead:
        return GONE
    return BUSY if busy else IDLE


@dataclass
class _Candidate:
    """A process that may be listed, before its row is built.

    Its state follows from what is known of it: its in-flight entries, the
    policy's judgement (``silent``) and its newest message, which is the
    snapshot's until ``newest`` is filled in from the heads read.
    """

    host: str
    pid: int
    last_seen: float
    #: Its in-flight entries, oldest first (``_in_flight_entries``).
    in_flight: list[Entry]
    #: Judged dead by the policy (liveness, or silence for another host); not
    #: asked when the snapshot's newest message already says ``Destroyed``.
    silent: bool
    #: Its newest message, when known.
    newest: tuple[float, str] | None
    #: Its oldest request has run longer than ``BUSY_AFTER``.
    running_long: bool
    #: Its newest message is ``Destroyed`` (follows from ``newest``).
    destroyed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.destroyed = says_destroyed(self.newest)

    @property
    def dead(self) -> bool:
        return self.silent or self.destroyed

    @functools.cached_property
    def state(self) -> str:
        return process_state(self.dead, bool(self.in_flight), self.destroyed)

    @property
    def priority(self) -> int:
        """Which rows a crowded page keeps first: slow, busy, gone, then the rest."""
        state = self.state
        if state == BUSY:
            return 0 if self.running_long else 1
        return 2 if state == GONE else 3


#: Reads the newest message and counts of the listed processes (``StatusStore.heads``).
ReadHeads = Callable[[Sequence[tuple[str, int]]], list[Head]]


@dataclass
class _Sorting:
    """The processes of a snapshot sorted out: candidates, those to delete, clocks ahead."""

    candidates: list[_Candidate] = field(default_factory=list)
    purge: list[tuple[str, int]] = field(default_factory=list)
    ahead: set[str] = field(default_factory=set)


def _should_purge(
    log: ProcessLog, settings: ReportSettings, policy: DeathPolicy, now: float, purged: int
) -> bool:
    """Long silent, dead by the policy, and this read may still delete."""
    return (
        now - log.last_seen > settings.purge_after
        and purged < MAX_PURGE_PER_READ
        and policy.why_delete(log.host, log.pid, log.last_seen, now) is not None
    )


def _candidate(
    log: ProcessLog, raw: Sequence[Any], settings: ReportSettings, policy: DeathPolicy, now: float
) -> _Candidate:
    entries = _in_flight_entries(raw) if raw else []
    newest = log.entries[0] if log.entries else None
    return _Candidate(
        log.host,
        log.pid,
        log.last_seen,
        entries,
        # A process that said ``Destroyed`` is dead whatever the policy would say.
        silent=not says_destroyed(newest)
        and policy.why_dead(log.host, log.pid, log.last_seen, now) is not None,
        newest=newest,
        running_long=bool(entries) and now - entries[0].started > settings.busy_after,
    )


def _sort_processes(snapshot: Snapshot, settings: ReportSettings, policy: DeathPolicy) -> _Sorting:
    """Each process of the snapshot deleted, left out (hidden by age) or a candidate."""
    now = snapshot.now
    sorting = _Sorting()
    for log in snapshot.processes:
        raw = snapshot.in_flight.get((log.host, log.pid), ())
        if _should_purge(log, settings, policy, now, len(sorting.purge)):
            sorting.purge.append((log.host, log.pid))
            continue
        elapsed = now - log.last_seen
        if elapsed > settings.hide_after and not raw:
            continue
        if elapsed < -CLOCK_AHEAD_AFTER:
            sorting.ahead.add(log.host)
        sorting.candidates.append(_candidate(log, raw, settings, policy, now))
    return sorting


def _with_heads(
    kept: list[_Candidate], read_heads: ReadHeads | None
) -> tuple[list[Head], list[Head]]:
    """The heads read for the kept candidates (empty if none), and one head per candidate."""
    heads = read_heads([(c.host, c.pid) for c in kept]) if read_heads and kept else []
    per_row = [heads[index] if index < len(heads) else Head() for index in range(len(kept))]
    return heads, per_row


def _process_row(
    candidate: _Candidate, head: Head, heads_read: bool, settings: ReportSettings, now: float
) -> ProcessRow:
    """A listed process's row, once its newest message is known."""
    if candidate.newest is None and head.newest is not None:
        candidate = replace(candidate, newest=head.newest)
    newest = candidate.newest
    return ProcessRow(
        candidate.host,
        candidate.pid,
        max(0.0, now - candidate.last_seen),
        clean(newest[1]) if newest is not None else "",
        last_event=candidate.last_seen,
        state=candidate.state,
        requests=_request_rows(candidate.in_flight, now, settings.busy_after, candidate.dead),
        served=head.served if heads_read else None,
        failed=head.failed if heads_read else None,
    )


def _process_rows(
    kept: list[_Candidate],
    settings: ReportSettings,
    now: float,
    read_heads: ReadHeads | None,
) -> list[ProcessRow]:
    heads, per_row = _with_heads(kept, read_heads)
    return [
        _process_row(candidate, head, bool(heads), settings, now)
        for candidate, head in zip(kept, per_row, strict=True)
    ]


def _state_counts(rows: Sequence[ProcessRow], left: Sequence[_Candidate]) -> dict[str, int]:
    """Active processes per state, listed or not."""
    return dict.fromkeys(STATES, 0) | Counter([row.state for row in rows] + [c.state for c in left])


def _hidden(left: Sequence[_Candidate]) -> list[Hidden]:
    """The processes not listed, counted per host and state."""
    return [
        Hidden(host, state, count)
        for (host, state), count in sorted(Counter((c.host, c.state) for c in left).items())
    ]


def _message_lines(snapshot: Snapshot, purge: Sequence[tuple[str, int]], count: int) -> list[Line]:
    """The newest ``count`` messages of the processes not being deleted."""
    purged = set(purge)
    shown = heapq.nlargest(
        count,
        (
            (stamp, log.host, log.pid, message)
            for log in snapshot.processes
            if (log.host, log.pid) not in purged
            for stamp, message in log.entries
        ),
        key=lambda item: item[0],
    )
    return [
        Line(host, pid, max(0.0, snapshot.now - stamp), clean(message))
        for stamp, host, pid, message in shown
    ]


def _coloured(rows: list[ProcessRow], lines: list[Line]) -> tuple[list[ProcessRow], list[Line]]:
    """The rows and lines with each process's colour."""
    colours = colour_processes([(item.host, item.pid) for item in [*rows, *lines]])
    return (
        [replace(row, colour=colours[row.host, row.pid]) for row in rows],
        [replace(line, colour=colours[line.host, line.pid]) for line in lines],
    )


def build_report(
    snapshot: Snapshot,
    settings: ReportSettings,
    policy: DeathPolicy | None = None,
    read_heads: ReadHeads | None = None,
) -> tuple[Report, list[tuple[str, int]]]:
    """The report for one read, and the processes to delete.

    ``policy`` judges which processes are dead (``settings.policy()`` unless
    given); processes of other hosts, or of other PID namespaces, are judged by
    silence only.
    ``read_heads`` reads the newest message of the listed rows whose messages
    the snapshot did not hold (without it they show none).
    """
    policy = settings.policy() if policy is None else policy
    sorting = _sort_processes(snapshot, settings, policy)
    kept, left = _crowded_out(sorting.candidates, settings.max_rows)
    rows = _process_rows(kept, settings, snapshot.now, read_heads)
    rows = with_locks(rows, snapshot, policy)
    lines = _message_lines(snapshot, sorting.purge, settings.messages)
    rows, lines = _coloured(rows, lines)
    report = Report(
        snapshot.now,
        rows,
        lines,
        _hidden(left),
        sorted(sorting.ahead),
        counts=_state_counts(rows, left),
        busy_total=snapshot.busy_total,
    )
    return report, sorting.purge


def _crowded_out(
    candidates: list[_Candidate], limit: int
) -> tuple[list[_Candidate], list[_Candidate]]:
    """At most ``limit`` candidates, youngest first, and the rest."""
    if len(candidates) <= limit:
        return candidates, []
    ranked = sorted(range(len(candidates)), key=lambda i: (candidates[i].priority, i))
    kept = sorted(ranked[:limit])
    return [candidates[i] for i in kept], [candidates[i] for i in ranked[limit:]]


def _with_lock(request: RequestRow, index: LockIndex) -> RequestRow:
    if not request.lock:
        return request
    since = index.now - request.phase_for
    state = index.state(request.lock, request.phase, since, request.held, request.lock_since)
    return replace(request, lock_state=state)


def with_locks(rows: list[ProcessRow], snapshot: Snapshot, policy: DeathPolicy) -> list[ProcessRow]:
    """The rows with each request's metatile lock resolved: a waiter's holder is looked
    for among every in-flight entry the snapshot holds (any host), a holder's waiters
    are counted."""
    if not any(request.lock for row in rows for request in row.requests):
        return rows
    index = LockIndex.of(snapshot, policy)
    return [
        replace(row, requests=tuple(_with_lock(request, index) for request in row.requests))
        if any(request.lock for request in row.requests)
        else row
        for row in rows
    ]
