"""Status messages in Redis: key names, one pipelined write, bounded reads.

Each process (host name + PID) has one list of ``"<unix time> <message>"``
strings, newest first, trimmed to KEEP and expiring TTL seconds after its last
write. A sorted set, the registry, names every process with its last-seen time,
so reading never scans the keyspace: its cost depends on the number of
processes, not on what else lives in the same Redis database.

Every key carries one Redis Cluster hash tag, so in a cluster all of them hash
to one slot and live on one node: a process's write and a status read each
stay one pipeline to one node, and a delete of many processes is one too.
The data is small (KEEP short strings per process) and written at most a few
times a second per process, well within what one node serves.

Nothing here knows Django; the client is any redis-py ``Redis`` or ``RedisCluster``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Events of one process, oldest first: ``(unix time, message)``.
Events = Sequence[tuple[float, str]]


@dataclass(frozen=True)
class ProcessLog:
    """What Redis holds for one process."""

    host: str
    pid: int
    last_seen: float
    #: ``(unix time, message)``, newest first.
    entries: list[tuple[float, str]]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _member(host: str, pid: int) -> str:
    # The PID comes first because a host name is free text and may hold ":".
    return f"{pid}:{host}"


def _parse_member(member: Any) -> tuple[str, int] | None:
    pid, _, host = _text(member).partition(":")
    return (host, int(pid)) if pid.isdigit() else None


def _parse_registry(members: Iterable[tuple[Any, Any]]) -> list[tuple[str, int, float]]:
    """``(host, pid, last_seen)`` from ZREVRANGE ... WITHSCORES, skipping malformed members."""
    found = []
    for member, score in members:
        parsed = _parse_member(member)
        if parsed is not None:
            found.append((parsed[0], parsed[1], float(score)))
    return found


def _parse_entries(raw: list[Any]) -> list[tuple[float, str]]:
    """``(unix time, message)`` from ``"<unix time> <message>"`` entries, skipping others.

    One loop rather than a call per entry: a page of 1000 processes reads
    20,000 of them.
    """
    entries = []
    for item in raw:
        text = item.decode("utf-8", "replace") if type(item) is bytes else str(item)
        stamp, _, message = text.partition(" ")
        try:
            entries.append((float(stamp), message))
        except ValueError:
            continue
    return entries


class StatusStore:
    """Reads and writes the status log under one key prefix."""

    def __init__(self, client: Any, prefix: str = "tilestatus", keep: int = 20, ttl: float = 3600):
        self.client = client
        self.prefix = prefix
        self.keep = int(keep)
        self.ttl = max(1, int(ttl))
        # The prefix, then the hash tag: keys still start with the prefix, the
        # tag comes before the host name (free text), and sites sharing a
        # cluster under different prefixes land on different slots.
        self._namespace = f"{self.prefix}:{{{self.prefix}}}"

    # -- key names: the only place they are built -------------------------

    def registry_key(self) -> str:
        return f"{self._namespace}:processes"

    def log_key(self, host: str, pid: int) -> str:
        return f"{self._namespace}:log:{host}:{pid}"

    # -- writing -----------------------------------------------------------

    def write(self, host: str, pid: int, events: Events) -> None:
        """Append events (oldest first) for one process in one round trip."""
        if not events:
            return
        key = self.log_key(host, pid)
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(key, *[f"{stamp:.6f} {message}" for stamp, message in events])
        pipe.ltrim(key, 0, self.keep - 1)
        pipe.expire(key, self.ttl)
        pipe.zadd(self.registry_key(), {_member(host, pid): events[-1][0]})
        pipe.expire(self.registry_key(), self.ttl)
        pipe.execute()

    # -- reading -----------------------------------------------------------

    def processes(self, now: float | None = None) -> list[tuple[str, int, float]]:
        """Every registered process as ``(host, pid, last_seen)``, youngest first.

        Entries older than TTL, whose messages Redis has expired, are dropped
        from the registry on the way.
        """
        now = time.time() if now is None else now
        pipe = self.client.pipeline(transaction=False)
        pipe.zremrangebyscore(self.registry_key(), "-inf", f"({now - self.ttl}")
        pipe.zrevrange(self.registry_key(), 0, -1, withscores=True)
        _, members = pipe.execute()
        return _parse_registry(members)

    def registered(self) -> list[tuple[str, int, float]]:
        """Every registry entry as ``(host, pid, last_seen)``, youngest first, changing nothing."""
        return _parse_registry(self.client.zrevrange(self.registry_key(), 0, -1, withscores=True))

    def have_logs(self, processes: Sequence[tuple[str, int]]) -> list[bool]:
        """Whether each ``(host, pid)`` still has messages (its list may have expired)."""
        if not processes:
            return []
        pipe = self.client.pipeline(transaction=False)
        for host, pid in processes:
            pipe.exists(self.log_key(host, pid))
        return [bool(count) for count in pipe.execute()]

    def read(self, now: float | None = None, per_process: int | None = None) -> list[ProcessLog]:
        """Every live process's messages, in a fixed number of round trips.

        Registry entries whose list has gone (deleted, or expired early) are
        removed, so the registry never outgrows the data it points to.
        """
        listed = self.processes(now)
        if not listed:
            return []
        count = self.keep if per_process is None else max(1, min(per_process, self.keep))
        pipe = self.client.pipeline(transaction=False)
        for host, pid, _ in listed:
            pipe.lrange(self.log_key(host, pid), 0, count - 1)
        logs, stale = [], []
        for (host, pid, seen), raw in zip(listed, pipe.execute(), strict=True):
            entries = _parse_entries(raw)
            if entries:
                logs.append(ProcessLog(host, pid, seen, entries))
            else:
                stale.append(_member(host, pid))
        if stale:
            self.client.zrem(self.registry_key(), *stale)
        return logs

    # -- deleting ----------------------------------------------------------

    def delete(self, processes: Iterable[tuple[str, int]]) -> int:
        """Delete the messages and registry entries of ``(host, pid)`` pairs."""
        pairs = list(processes)
        if not pairs:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for host, pid in pairs:
            pipe.delete(self.log_key(host, pid))
        pipe.zrem(self.registry_key(), *[_member(host, pid) for host, pid in pairs])
        pipe.execute()
        return len(pairs)
