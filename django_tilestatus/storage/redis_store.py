"""The status log and tile statistics in Redis: the one storage backend (``RedisStore``).

Each process (host name + PID) has one list of ``"<unix time> <message>"``
strings, newest first, trimmed to KEEP and expiring TTL seconds after its last
write. A sorted set, the registry, names every process with its last-seen time,
so reading never scans the keyspace: its cost depends on the number of
processes, not on what else lives in the same Redis database.

Beside the messages, each process with requests under way has a hash of them
(field: the thread id; value: the compact JSON ``inflight`` encodes) and a
place in the busy set (a sorted set scored by its oldest request's start), so
a page finds the busy processes without reading every process; and a small
hash counts the requests it served and failed. Every key has a TTL; a process
that dies leaves its in-flight hash behind until then, which is how the page
names the tile it died on.

Everything the app reads from Redis is treated as untrusted: another program,
an older version or a bug may have written anything under the prefix. What does
not parse is skipped and, where it is the app's own registry, removed. A key of
another type than the app writes (Redis answers ``WRONGTYPE``) is skipped too: every
read pipeline takes each reply on its own (``execute(raise_on_error=False)``), so one
such key costs only its own entry, and the reads count what they skipped. Only a
connection error or a timeout makes the store unavailable. Numbers read back are
finite, and statistics lie within ``[0, MAX_STAT]``, so sums of them stay finite.

Each recording process also announces its PID namespace (the inode of
``/proc/self/ns/pid``) in a key of its own, written apart from the batches
(``announce``) and living twice TTL, so a reader judges a PID only in the
process table it belongs to (``reading.liveness``).

Tile statistics (see ``statistics.counting`` and ``statistics.schema``) live in
hashes of their own, written in the same pipeline as the messages and read in
one round trip; their keys and commands are in the "statistics" section below.
The store writes and reads every statistic alike, by the field names its
records give (``schema``), and knows none of them.

Core module: imports the standard library, redis-py, ``interface`` (what crosses the
seam), ``statistics`` (its records and field names) and ``vocabulary`` only.
This module and ``connection`` are the only ones that import redis; callers
see ``StoreUnavailable`` instead of redis-py's errors.

Every key carries one Redis Cluster hash tag, so in a cluster all of them hash
to one slot and live on one node: a process's write and a status read each
stay one pipeline to one node, and a delete of many processes is one too.
The data is small (KEEP short strings per process) and written at most a few
times a second per process, well within what one node serves.
The client is any redis-py ``Redis`` or ``RedisCluster``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from redis.crc import key_slot
from redis.exceptions import (
    ClusterCrossSlotError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from ..recording.vocabulary import MAX_MESSAGE_LENGTH, clean
from ..statistics import schema
from ..statistics.counting import Deltas
from ..statistics.schema import SlowRequest, Statistic
from .batch_script import BATCH_SCRIPT, BATCH_SCRIPT_SHA, BatchCommands, parse_reply
from .interface import (
    MAX_BUSY_READ,
    MAX_PID,
    BatchNumber,
    Events,
    Head,
    InFlightUpdate,
    ProcessLog,
    Registry,
    Snapshot,
    StatMinutes,
    StatTotals,
    StoreRejected,
    StoreUnavailable,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: What redis-py raises when Redis cannot be reached or refuses: a cluster's own
#: errors (``RedisClusterException``) are not ``RedisError``s.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)

# -- parsing what Redis holds -----------------------------------------------


def _text(value: Any) -> str | None:
    """``value`` as text, or None for bytes that are not UTF-8."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(value)


def describe_member(member: Any) -> str:
    """A malformed registry member as one printable line, for the purge command."""
    text = _text(member)
    return clean(repr(member) if text is None else text, 80)


def _member(host: str, pid: int) -> str:
    # The PID comes first because a host name is free text and may hold ":".
    return f"{pid}:{host}"


def parse_member(member: Any) -> tuple[str, int] | None:
    """``(host, pid)`` from a registry member, or None if it names no process.

    The PID must be ASCII digits within the OS range ("²".isdigit() is true,
    and 2**31 makes ``os.kill`` overflow); the host must be non-empty text.
    """
    text = _text(member)
    if text is None:
        return None
    pid, _, host = text.partition(":")
    if not (pid.isascii() and pid.isdigit() and host) or len(pid) > 10:
        return None
    number = int(pid)
    return (host, number) if 0 < number <= MAX_PID else None


def _parse_registry(members: Any) -> Registry:
    """A ``Registry`` from ZREVRANGE... WITHSCORES replies (or the error Redis answered
    instead, for a registry of another type: skipped)."""
    if isinstance(members, ResponseError):
        return Registry([], [], skipped=1)
    entries, malformed = [], []
    for member, score in members:
        parsed = parse_member(member)
        seen = _number(score, finite_only=True)
        if parsed is None or seen is None:
            malformed.append(member)
        else:
            entries.append((parsed[0], parsed[1], seen))
    return Registry(entries, malformed)


def parse_entries(raw: list[Any]) -> list[tuple[float, str]]:
    """``(unix time, message)`` from ``"<unix time> <message>"`` entries, skipping others.

    Skipped: no space, a stamp that is not a finite number, bytes that are not
    UTF-8. A message longer than ``MAX_MESSAGE_LENGTH`` is cut. One loop rather
    than a call per entry: a page of 1000 processes reads 20,000 of them.
    """
    entries = []
    isfinite = math.isfinite
    for item in raw:
        if type(item) is bytes:
            try:
                text = item.decode("utf-8")
            except UnicodeDecodeError:
                continue
        else:
            text = str(item)
        stamp, space, message = text.partition(" ")
        if not space:
            continue
        try:
            when = float(stamp)
        except ValueError:
            continue
        if not isfinite(when):
            continue
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[:MAX_MESSAGE_LENGTH] + "..."
        entries.append((when, message))
    return entries


def _count(value: Any) -> int:
    """A counter as Redis returned it; 0 for anything that is not a whole number."""
    text = _text(value) if value is not None else None
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 18:
        return 0
    return int(text)


# -- errors -----------------------------------------------------------------


def describe_failure(exc: BaseException, what: str = "command") -> str:
    """Why ``what`` failed, for the log: unreachable, or refused (full, read-only...).

    redis-py quotes the failed pipeline command, whose arguments are tile
    paths (user input), in its error text; only Redis's own reason is kept.
    """
    if isinstance(exc, ResponseError):
        reason = str(exc).rpartition(" of pipeline caused error: ")[2]
        return f"Redis refused the {what} ({type(exc).__name__}: {reason})"
    return f"Redis is unavailable ({type(exc).__name__}: {exc})"


#: Error codes of a Redis that refuses now and may take the same write later (busy
#: with a script, cannot persist, lacks replicas); redis-py gives them no class of their own.
RETRIED_CODES = frozenset({"BUSY", "MISCONF", "NOREPLICAS", "UNBLOCKED"})


def refused_for_good(exc: BaseException) -> bool:
    """Whether Redis refused a write in a way that sending it again cannot change.

    Retried (False): connection errors and timeouts, and the refusals of a server
    that may take it later (``OOM``, ``READONLY``, ``LOADING``, ``BUSY``, ``MISCONF``,
    ``MASTERDOWN``, ``TRYAGAIN``, ``CLUSTERDOWN``, ``NOPERM``...). For good (True): a
    plain ``ERR`` (an unknown command, such as scripts on a server without them, or a
    script error) and ``CROSSSLOT``. A command refused for what its key holds
    (``WRONGTYPE``) never gets here: the batch script skips it.
    """
    if isinstance(exc, ClusterCrossSlotError):
        return True
    if type(exc) is not ResponseError:
        return False
    return str(exc).partition(" ")[0] not in RETRIED_CODES


@contextmanager
def _unavailable_as_store_error(what: str = "command") -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        raise StoreUnavailable(describe_failure(exc, what)) from exc


def _refused(reply: Any) -> bool:
    """Whether one reply of a read pipeline is Redis refusing that command (a key of
    another type than the app writes): its entry is skipped, the read goes on."""
    return isinstance(reply, ResponseError)


def _wrong_type(reply: Any) -> bool:
    """Whether a reply is Redis's ``WRONGTYPE``: the key holds another type."""
    reason = str(reply).rpartition(" caused error: ")[2]
    return isinstance(reply, ResponseError) and reason.startswith("WRONGTYPE")


def _execute_read(pipe: Any) -> list[Any]:
    """A read pipeline's replies, a refused command's as its ``ResponseError``.

    Anything else (no connection, a timeout) raises ``StoreUnavailable``.
    """
    with _unavailable_as_store_error():
        replies: list[Any] = pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception) and not _refused(reply):
            raise StoreUnavailable(describe_failure(reply))
    return replies


#: What a clean-up on a read may meet and carry on after.
CLEANUP_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, StoreUnavailable)


class _OnceLogger:
    """Logs a failed clean-up once, not on every read, until one succeeds again."""

    def __init__(self) -> None:
        self.failing = False

    def run(self, what: str, action: Callable[[], T]) -> T | None:
        try:
            result = action()
        except CLEANUP_ERRORS as exc:
            if not self.failing:
                self.failing = True
                reason = str(exc) if isinstance(exc, StoreUnavailable) else describe_failure(exc)
                logger.warning("Tile status: could not %s (%s); reads go on.", what, reason)
            return None
        self.failing = False
        return result


def _raiser(exc: Exception) -> Callable[[], None]:
    def action() -> None:
        raise exc

    return action


# -- statistics: keys, writing, reading ------------------------------------------

#: Seconds the cumulative statistics outlive the last request counted. A
#: counter that expires restarts from zero, which Prometheus takes as a reset.
STATS_TTL = 30 * 86400
#: Seconds a minute's statistics are kept: the page's hour, and a margin.
MINUTE_TTL = 3600 + 120


#: The largest statistic read back (a count or a sum of seconds; none is negative).
#: Whole numbers are exact up to it, and the sums the readers make of a few thousand
#: such values stay finite: a larger value was not written by this app and is skipped.
MAX_STAT = float(2**53)


def _number(value: Any, finite_only: bool = False) -> float | None:
    """``value`` as a number within ``[0, MAX_STAT]`` (any finite one with
    ``finite_only``), or None."""
    if isinstance(value, (bytes, str)) and len(value) > 64:
        return None  # no number this app writes is that long
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if finite_only:
        return number if math.isfinite(number) else None
    return number if 0.0 <= number <= MAX_STAT else None


def _parse_stat_values(
    pairs: Iterable[tuple[Any, Any]],
) -> tuple[dict[Statistic, float], int]:
    """The records and numbers of a statistics hash or sorted set, and how many were
    skipped: fields this app did not write, and values that are not numbers within
    ``[0, MAX_STAT]``."""
    parsed, skipped = {}, 0
    for name, value in pairs:
        record = schema.parse(name)
        number = _number(value)
        if record is not None and number is not None:
            parsed[record] = number
        else:
            skipped += 1
    return parsed, skipped


class _RedisStatistics:
    """The statistics half of ``RedisStore``: its keys, writes and reads.

    One cumulative hash (for counters), and per minute a hash of the same
    fields, a sorted set of the minute's largest values by field (``ZADD GT``;
    today each layer and outcome's slowest seconds) and one of the slowest
    requests; every key has a TTL. Fields are the records' names (``schema``),
    written from ``Deltas`` and read back through ``schema.parse`` whatever
    statistic they hold.
    """

    #: The prefix and its cluster hash tag (see ``RedisStore``): statistics
    #: share the messages' slot, so they go in the same pipeline.
    _namespace: str
    client: Any

    def stats_total_key(self) -> str:
        return f"{self._namespace}:stats:total"

    def stats_dropped_key(self) -> str:
        return f"{self._namespace}:stats:dropped"

    def stats_minute_key(self, minute: int) -> str:
        return f"{self._namespace}:stats:minute:{minute}"

    def stats_max_key(self, minute: int) -> str:
        return f"{self._namespace}:stats:max:{minute}"

    def stats_slow_key(self, minute: int) -> str:
        return f"{self._namespace}:stats:slow:{minute}"

    def _add_stats(self, batch: BatchCommands, host: str, pid: int, deltas: Deltas) -> None:
        """Add the commands adding ``deltas`` to ``batch`` (the write's own script).

        Per minute touched: an ``HINCRBY``/``HINCRBYFLOAT`` per field (and the
        same on the cumulative hash, unless the record is kept per minute only:
        ``Statistic.CUMULATIVE``), one ``ZADD GT`` of the maxima, one
        ``ZADD`` and trim of the slowest tiles, and an ``EXPIRE`` per key.
        Every record is written alike: a new statistic needs nothing here.
        """
        total = self.stats_total_key()
        add = batch.add
        for minute in sorted(deltas.counts.keys() | deltas.sums.keys()):
            key = self.stats_minute_key(minute)
            for record, count in deltas.counts.get(minute, {}).items():
                name = record.field
                if record.CUMULATIVE:
                    add("stats:total", "HINCRBY", total, name, count)
                add("stats:minute", "HINCRBY", key, name, count)
            for record, summed in deltas.sums.get(minute, {}).items():
                name = record.field
                if record.CUMULATIVE:
                    add("stats:total", "HINCRBYFLOAT", total, name, summed)
                add("stats:minute", "HINCRBYFLOAT", key, name, summed)
            add("stats:minute", "EXPIRE", key, MINUTE_TTL)
        for minute, maxima in deltas.maxima.items():
            if maxima:
                key = self.stats_max_key(minute)
                pairs = [item for record, value in maxima.items() for item in (value, record.field)]
                batch.add_many("stats:max", "ZADD", key, pairs, options=("GT",), width=2)
                add("stats:max", "EXPIRE", key, MINUTE_TTL)
        slowest: dict[int, dict[str, float]] = defaultdict(dict)
        for slow in deltas.slowest:
            slowest[int(slow.when // 60)][slow.as_json(host, pid)] = slow.seconds
        for minute, members in slowest.items():
            key = self.stats_slow_key(minute)
            pairs = [item for member, seconds in members.items() for item in (seconds, member)]
            batch.add_many("stats:slow", "ZADD", key, pairs, width=2)
            add("stats:slow", "ZREMRANGEBYRANK", key, 0, -schema.SLOWEST - 1)
            add("stats:slow", "EXPIRE", key, MINUTE_TTL)
        if deltas.counts:
            add("stats:total", "EXPIRE", total, STATS_TTL)
        if deltas.dropped:
            add("stats:dropped", "HINCRBY", self.stats_dropped_key(), host, deltas.dropped)
            add("stats:dropped", "EXPIRE", self.stats_dropped_key(), STATS_TTL)

    def stat_totals(self) -> StatTotals:
        """The cumulative statistics and drops per host, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.stats_total_key())
        pipe.hgetall(self.stats_dropped_key())
        fields, dropped = _execute_read(pipe)
        skipped = 0
        drops = {}
        if _refused(dropped):
            skipped += 1
        else:
            for host, value in dropped.items():
                name, number = _text(host), _number(value)
                if name and number is not None:
                    drops[name] = number
                else:
                    skipped += 1
        parsed: dict[Statistic, float]
        if _refused(fields):
            parsed, bad = {}, 1
        else:
            parsed, bad = _parse_stat_values(fields.items())
        return StatTotals(parsed, drops, skipped=skipped + bad)

    def stat_minutes(self, now: float, minutes: int) -> StatMinutes:
        """The last ``minutes`` minutes' statistics and slowest tiles, in one round trip."""
        current = int(now // 60)
        wanted = list(range(current - minutes + 1, current + 1))
        pipe = self.client.pipeline(transaction=False)
        for minute in wanted:
            pipe.hgetall(self.stats_minute_key(minute))
            pipe.zrange(self.stats_max_key(minute), 0, -1, withscores=True)
            pipe.zrevrange(self.stats_slow_key(minute), 0, schema.SLOWEST - 1)
        replies = _execute_read(pipe)
        fields, maxima, slowest = {}, {}, []
        skipped = 0
        for index, minute in enumerate(wanted):
            raw, top, slow = replies[3 * index : 3 * index + 3]
            if _refused(raw):
                skipped += 1
            elif raw:
                fields[minute], bad = _parse_stat_values(raw.items())
                skipped += bad
            if _refused(top):
                skipped += 1
            elif top:
                maxima[minute], bad = _parse_stat_values(top)
                skipped += bad
            if _refused(slow):
                skipped += 1
                continue
            parsed = [entry for entry in map(SlowRequest.parse, slow) if entry is not None]
            skipped += len(slow) - len(parsed)
            slowest += parsed
        slowest.sort(key=lambda entry: -entry.seconds)
        return StatMinutes(fields, maxima, slowest[: schema.SLOWEST], skipped=skipped)


# -- the Redis store ----------------------------------------------------------


class RedisStore(_RedisStatistics):
    """The status log and tile statistics in Redis, under one key prefix."""

    def __init__(self, client: Any, prefix: str = "tilestatus", keep: int = 20, ttl: float = 3600):
        self.client = client
        self.prefix = prefix
        self.keep = int(keep)
        self.ttl = max(1, int(ttl))
        self._cleanup = _OnceLogger()
        #: Key families whose writes were skipped (wrong type), logged once.
        self._failing_families: set[str] = set()
        # The prefix, then the hash tag: keys still start with the prefix, the
        # tag comes before the host name (free text), and sites sharing a
        # cluster under different prefixes land on different slots.
        self._namespace = f"{self.prefix}:{{{self.prefix}}}"

    # -- key names: the only place they are built -----------------------------

    def registry_key(self) -> str:
        return f"{self._namespace}:processes"

    def keys_share_one_slot(self) -> bool:
        """Whether every key of this prefix hashes to one Redis Cluster slot (so each
        pipeline of the app goes to one node); a prefix holding braces may break that."""
        keys = (
            self.registry_key(),
            self.busy_key(),
            self.stats_total_key(),
            self.log_key("a", 1),
            self.log_key("b", 2),
            self.in_flight_key("b", 2),
            self.pid_namespace_key("b", 2),
        )
        return len({key_slot(key.encode()) for key in keys}) == 1

    def log_key(self, host: str, pid: int) -> str:
        return f"{self._namespace}:log:{host}:{pid}"

    def in_flight_key(self, host: str, pid: int) -> str:
        return f"{self._namespace}:inflight:{host}:{pid}"

    def busy_key(self) -> str:
        return f"{self._namespace}:busy"

    def counts_key(self, host: str, pid: int) -> str:
        return f"{self._namespace}:counts:{host}:{pid}"

    def applied_key(self, host: str, pid: int) -> str:
        """The writer token and number of the process's last batch applied (see
        ``batch_script``)."""
        return f"{self._namespace}:applied:{host}:{pid}"

    def pid_namespace_key(self, host: str, pid: int) -> str:
        return f"{self._namespace}:pidns:{host}:{pid}"

    # -- PID namespaces -------------------------------------------------------------

    def announce(self, host: str, pid: int, namespace: int | None) -> None:
        """Record the PID namespace of ``(host, pid)``, or clear it when None; one command.

        It lives twice TTL: a writer announcing again every TTL/2 while it writes
        keeps it alive for as long as the process's messages and registry entry.
        """
        key = self.pid_namespace_key(host, pid)
        with _unavailable_as_store_error("write"):
            if namespace is None:
                self.client.delete(key)
            else:
                self.client.set(key, int(namespace), ex=2 * self.ttl)

    def namespaces(self, processes: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The PID namespace each ``(host, pid)`` announced, in one round trip; those
        with none (an older version's, or expired) or with anything but a number are
        left out."""
        if not processes:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for host, pid in processes:
            pipe.get(self.pid_namespace_key(host, pid))
        with _unavailable_as_store_error():
            replies = pipe.execute()
        found = {}
        for process, value in zip(processes, replies, strict=True):
            inode = _count(value) if value is not None else 0
            if inode:
                found[process] = inode
        return found

    # -- writing ------------------------------------------------------------------

    def write(
        self,
        host: str,
        pid: int,
        events: Events,
        in_flight: InFlightUpdate | None = None,
        stats: Deltas | None = None,
        batch: BatchNumber | None = None,
    ) -> bool:
        """Append events (oldest first), apply ``in_flight`` and add ``stats``, in one
        round trip (one script, applied whole: see ``batch_script``).

        With ``batch``, nothing changes if that writer's batch of that number (or a
        later one) was applied already: a batch whose reply was lost can be sent
        again. Returns False in that case, True otherwise. A command refused for what
        its key holds (another program wrote a wrong type under the prefix) is
        skipped, the rest applied, and the key's family logged once; a Redis that is
        unreachable or refuses the write raises ``StoreUnavailable``, and one that
        will never take it (scripts refused, a bug) ``StoreRejected``.
        """
        if not events and in_flight is None and not stats:
            return True
        key, member = self.log_key(host, pid), _member(host, pid)
        commands = BatchCommands(self.applied_key(host, pid))
        seen = events[-1][0] if events else None
        if events:
            # Only the newest ``keep`` survive the trim below: a busy process's batch holds
            # thousands, and formatting and sending the rest would be CPU for nothing.
            newest = events[-self.keep :]
            lines = [f"{stamp:.6f} {message}" for stamp, message in newest]
            commands.add_many("log", "LPUSH", key, lines)
            commands.add("log", "LTRIM", key, 0, self.keep - 1)
        if in_flight is not None:
            seen = in_flight.touch or seen
            self._write_in_flight(commands, host, pid, in_flight)
        if seen is not None:
            commands.add("log", "EXPIRE", key, self.ttl)
            commands.add("registry", "ZADD", self.registry_key(), seen, member)
            commands.add("registry", "EXPIRE", self.registry_key(), self.ttl)
        if stats:
            self._add_stats(commands, host, pid, stats)
        token, number = (batch.writer, batch.number) if batch is not None else ("-", 0)
        reply = self._run_script(commands, commands.arguments(token, number, self.ttl))
        applied, skipped = parse_reply(reply, commands.families)
        self._report_skipped(commands.families, skipped)
        return applied

    def _run_script(self, commands: BatchCommands, arguments: list[Any]) -> Any:
        """``BATCH_SCRIPT`` on ``commands``: by its SHA, by its text if Redis lacks it."""
        keys = commands.keys
        try:
            try:
                return self.client.evalsha(BATCH_SCRIPT_SHA, len(keys), *keys, *arguments)
            except NoScriptError:  # a new or restarted Redis: nothing ran
                return self.client.eval(BATCH_SCRIPT, len(keys), *keys, *arguments)
        except REDIS_ERRORS as exc:
            if refused_for_good(exc):
                raise StoreRejected(describe_failure(exc, "write")) from exc
            raise StoreUnavailable(describe_failure(exc, "write")) from exc

    def _report_skipped(self, families: list[str], skipped: dict[str, tuple[int, str]]) -> None:
        """Log a key family whose commands were skipped, once until it is written again."""
        failing = self._failing_families
        for family, (count, reason) in skipped.items():
            if family not in failing:
                failing.add(family)
                logger.warning(
                    "Tile status: %d write(s) to the %s key skipped, Redis refused them "
                    "(%s); the rest of the batch was written. Another program may have "
                    "written that key under the prefix; it expires with its TTL.",
                    count,
                    family,
                    clean(reason, 120),
                )
        if failing:
            failing.difference_update(set(families) - skipped.keys())

    def _write_in_flight(
        self, commands: BatchCommands, host: str, pid: int, update: InFlightUpdate
    ) -> None:
        key, member = self.in_flight_key(host, pid), _member(host, pid)
        if update.delete:
            commands.add_many("in-flight", "HDEL", key, update.delete)
        if update.set:
            pairs = [item for pair in update.set.items() for item in pair]
            commands.add_many("in-flight", "HSET", key, pairs, width=2)
            commands.add("in-flight", "EXPIRE", key, self.ttl)
        if update.set or update.delete:
            if update.oldest is None:
                commands.add("busy", "ZREM", self.busy_key(), member)
            else:
                commands.add("busy", "ZADD", self.busy_key(), update.oldest, member)
                commands.add("busy", "EXPIRE", self.busy_key(), self.ttl)
        if update.served or update.failed:
            counts = self.counts_key(host, pid)
            if update.served:
                commands.add("counts", "HINCRBY", counts, "served", update.served)
            if update.failed:
                commands.add("counts", "HINCRBY", counts, "failed", update.failed)
            commands.add("counts", "EXPIRE", counts, self.ttl)

    # -- reading ------------------------------------------------------------------

    def _live_registry(self, now: float) -> Registry:
        """Registry entries seen within TTL, youngest first, in one round trip.

        Entries past TTL, whose lists Redis has expired, are dropped on the
        way; on a read-only replica that fails, which is logged once and
        changes nothing else: they are not listed either way.
        """
        cutoff = now - self.ttl
        pipe = self.client.pipeline(transaction=False)
        pipe.zrevrangebyscore(self.registry_key(), "+inf", cutoff, withscores=True)
        pipe.zremrangebyscore(self.registry_key(), "-inf", f"({cutoff}")
        members, dropped = _execute_read(pipe)
        if isinstance(dropped, Exception) and not _refused(members):
            # Refused while the read was not: a read-only replica (a registry of another
            # type refuses both, and is skipped).
            self._cleanup.run("drop expired registry entries", _raiser(dropped))
        registry = _parse_registry(members)
        if registry.malformed:
            self._forget(registry.malformed)
        return registry

    def _read_lists(self, wanted: Sequence[tuple[str, int, int]]) -> list[list[tuple[float, str]]]:
        """The newest ``count`` entries of each ``(host, pid, count)``, in one round trip
        (none for a key of another type)."""
        if not wanted:
            return []
        pipe = self.client.pipeline(transaction=False)
        for host, pid, count in wanted:
            pipe.lrange(self.log_key(host, pid), 0, count - 1)
        return [[] if _refused(raw) else parse_entries(raw) for raw in _execute_read(pipe)]

    def snapshot(
        self, now: float, *, recent: int, host: str | None = None, max_busy: int = MAX_BUSY_READ
    ) -> Snapshot:
        """Every process seen within TTL, reading only what a page can show.

        The ``recent`` most recently seen processes get all their messages
        (the newest N messages can only come from the N most recently seen
        processes); the ``max_busy`` processes with the oldest requests in
        flight, their in-flight hashes; the rest nothing (``heads`` reads the
        newest message of the rows a page lists). Three round trips whatever
        the registry holds, plus one to drop entries whose data has gone.
        """
        registry = self._live_registry(now)
        listed = [entry for entry in registry.entries if host is None or entry[0] == host]
        wanted = [(name, pid, self.keep) for name, pid, _ in listed[:recent]]
        pipe = self.client.pipeline(transaction=False)
        pipe.zrange(self.busy_key(), 0, max_busy - 1)
        pipe.zcard(self.busy_key())
        for name, pid, count in wanted:
            pipe.lrange(self.log_key(name, pid), 0, count - 1)
        busy_members, busy_total, *lists = _execute_read(pipe)
        skipped = registry.skipped
        if _refused(busy_members):  # the busy set is of another type
            busy_members, busy_total, skipped = [], 0, skipped + 1
        busy = [parsed for parsed in map(parse_member, busy_members) if parsed is not None]
        skipped += len(busy_members) - len(busy)
        busy = [item for item in busy if host is None or item[0] == host]
        in_flight, empty, refused = self._read_in_flight(busy)
        skipped += refused
        processes, stale = [], []
        for index, (name, pid, seen) in enumerate(listed):
            entries: list[tuple[float, str]] = []
            if index < len(lists):
                raw = lists[index]
                if _refused(raw):
                    skipped += 1
                else:
                    entries = parse_entries(raw)
                    skipped += len(raw) - len(entries)
            if index < len(lists) and not entries and (name, pid) not in in_flight:
                stale.append(_member(name, pid))
                continue
            processes.append(ProcessLog(name, pid, seen, entries))
        if stale:
            self._forget(stale)
        if empty:
            self._cleanup.run(
                "remove stale busy entries",
                lambda: self.client.zrem(self.busy_key(), *[_member(*item) for item in empty]),
            )
        return Snapshot(
            now, processes, len(registry.malformed), in_flight, int(busy_total), skipped=skipped
        )

    def _read_in_flight(
        self, busy: list[tuple[str, int]]
    ) -> tuple[dict[tuple[str, int], list[Any]], list[tuple[str, int]], int]:
        """The in-flight hashes of ``busy`` processes, those found empty, and how many
        were of another type (skipped, left alone)."""
        if not busy:
            return {}, [], 0
        pipe = self.client.pipeline(transaction=False)
        for name, pid in busy:
            pipe.hvals(self.in_flight_key(name, pid))
        replies = _execute_read(pipe)
        found, empty, refused = {}, [], 0
        for item, values in zip(busy, replies, strict=True):
            if _refused(values):
                refused += 1
            elif values:
                found[item] = values
            else:
                empty.append(item)
        return found, empty, refused

    def heads(self, processes: Sequence[tuple[str, int]]) -> list[Head]:
        """The newest message and request counts of each ``(host, pid)``, in one round trip."""
        if not processes:
            return []
        pipe = self.client.pipeline(transaction=False)
        for name, pid in processes:
            pipe.lindex(self.log_key(name, pid), 0)
            pipe.hmget(self.counts_key(name, pid), "served", "failed")
        replies = _execute_read(pipe)
        heads = []
        for index in range(0, len(replies), 2):
            head, counts = replies[index], replies[index + 1]
            skipped = 0
            newest = []
            if _refused(head):
                skipped += 1
            elif head is not None:
                newest = parse_entries([head])
                skipped += 1 - len(newest)
            if _refused(counts):
                served = failed = 0
                skipped += 1
            else:
                served, failed = (_count(value) for value in counts)
            heads.append(Head(newest[0] if newest else None, served, failed, skipped=skipped))
        return heads

    def read(self, now: float | None = None) -> list[ProcessLog]:
        """Every live process's messages, in a fixed number of round trips.

        Registry entries whose list has gone (deleted, or expired early) are
        removed, so the registry never outgrows the data it points to.
        """
        now = time.time() if now is None else now
        listed = self._live_registry(now).entries
        logs = self._read_lists([(host, pid, self.keep) for host, pid, _ in listed])
        found, stale = [], []
        for (host, pid, seen), entries in zip(listed, logs, strict=True):
            if entries:
                found.append(ProcessLog(host, pid, seen, entries))
            else:
                stale.append(_member(host, pid))
        if stale:
            self._forget(stale)
        return found

    def registry(self) -> Registry:
        """Every registry entry, youngest first, and the malformed ones, changing nothing
        (a registry of another type is skipped: no entry)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zrevrange(self.registry_key(), 0, -1, withscores=True)
        [members] = _execute_read(pipe)
        return _parse_registry(members)

    def have_logs(self, processes: Sequence[tuple[str, int]]) -> list[bool]:
        """Whether each ``(host, pid)`` still has messages (its list may have expired)."""
        if not processes:
            return []
        pipe = self.client.pipeline(transaction=False)
        for host, pid in processes:
            pipe.exists(self.log_key(host, pid))
        return [not _refused(count) and bool(count) for count in _execute_read(pipe)]

    # -- deleting -----------------------------------------------------------------

    def _forget(self, members: list[Any]) -> None:
        """Drop registry members found unusable while reading (best effort)."""
        self._cleanup.run(
            "remove stale registry entries",
            lambda: self.client.zrem(self.registry_key(), *members),
        )

    def delete(self, processes: Iterable[tuple[str, int]], malformed: Iterable[Any] = ()) -> int:
        """Delete the messages and registry entries of ``(host, pid)`` pairs, and
        malformed registry members; returns how many entries went."""
        pairs = list(processes)
        members = [_member(host, pid) for host, pid in pairs] + list(malformed)
        if not members:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for host, pid in pairs:
            # One key a command: a cluster pipeline takes no multi-key DELETE.
            for key in (
                self.log_key(host, pid),
                self.in_flight_key(host, pid),
                self.counts_key(host, pid),
                self.pid_namespace_key(host, pid),
                self.applied_key(host, pid),
            ):
                pipe.delete(key)
        pipe.zrem(self.registry_key(), *members)
        pipe.zrem(self.busy_key(), *members)
        with _unavailable_as_store_error():
            replies = pipe.execute(raise_on_error=False)
        for reply in replies:
            # A registry or busy set of another type keeps its members (nothing of
            # ours is in it); any other refusal (a read-only replica) is one.
            if isinstance(reply, Exception) and not _wrong_type(reply):
                raise StoreUnavailable(describe_failure(reply))
        return len(members)

    def delete_quietly(self, processes: Iterable[tuple[str, int]]) -> None:
        """``delete`` as clean-up on a read: a refusal (a read-only replica) is logged once."""
        self._cleanup.run("delete long-silent processes", lambda: self.delete(processes))

    # -- deaths: counted once -------------------------------------------------------

    def death_key(self, host: str, pid: int) -> str:
        return f"{self._namespace}:died:{host}:{pid}"

    def claim_death(self, host: str, pid: int) -> bool:
        """Whether this caller is the first to count the death of ``(host, pid)``: an
        atomic ``SET NX``, kept as long as the process's other keys."""
        with _unavailable_as_store_error():
            claimed = self.client.set(self.death_key(host, pid), 1, nx=True, ex=self.ttl)
        return bool(claimed)

    def in_flight_of(
        self, processes: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], list[Any]]:
        """The in-flight hashes of ``processes`` (raw values), those with any, in one round
        trip."""
        return self._read_in_flight(list(processes))[0]
