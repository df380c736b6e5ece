"""Waiting for TileStache's metatile cache lock without its 200 ms polls.

TileStache's Disk, Redis and Memcache caches take a metatile's lock by trying
it and sleeping 0.2 s between tries, and force it once ``stale_lock_timeout``
has passed. The cache wrapper (``tilestache_cache``) instead tries the cache's
own lock without waiting (``LockBackend.try_lock``: the same directory, key and
expiry TileStache uses, so a bare TileStache process sharing the cache stays
safe) and does the waiting itself:

- waiters in this process sleep on the lock's ``Gate`` (a
  ``threading.Condition``); while the holder is a request of this process they need
  not poll. Its unlock hands the lock, still held, to one of them (``hand_over``):
  a metatile's waiters mostly take the lock only to read the tile its render saved,
  and passing it along spares each of them taking and releasing the cache's lock,
  and all of them waking on every release to find it taken again. Only when no
  waiter here is left is the lock released (and any woken);
- otherwise they try again after 2 ms, doubling to 20 ms, so a lock released by
  another process is taken within 20 ms;
- past ``stale_lock_timeout`` the lock is forced as TileStache forces it;
- while waiting on a holder of another process (one of this process is alive), at
  most every ``LOOK_EVERY`` seconds, the waiter asks who holds the lock
  (``set_holder_source``: the in-flight entries in the status store, read by
  ``reading.locks``). When the lock as it stands is the very instance a dead process
  took (``Claim.token`` equals the backend's ``current()``), it is broken
  at once;
- a holder's in-flight entry reaches the store up to 200 ms after it took the lock,
  so the lock also records its holder (``set_holder_identity``: host, PID namespace,
  PID, thread, time). Redis and Memcache: in the key's value, after TileStache's
  ``locked.``; Disk: in a line of its process's holder file in the cache's root
  (``disk_holders``, written just before the directory is made; the directory stays
  TileStache's empty one, which a bare TileStache removes with ``os.rmdir``). When the
  in-flight entries name no dead holder, the waiter asks the source to judge the holder
  the lock records (``Recorded``), so a holder killed before its entry was written is found.

A live holder's lock is never broken early, nor one whose holder is unknown (a bare
TileStache process's ``locked.`` or unrecorded directory, an older version's lock).

Caches of other kinds, and subclasses (which may lock their own way), keep
TileStache's own ``lock()``.

Core module: imports the standard library and ``disk_holders`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import disk_holders

#: Seconds before the first retry across processes, and the most between retries.
RETRY_FIRST = 0.002
RETRY_MOST = 0.02
#: Seconds a waiter sleeps at most while the holder is a request of this process (its
#: unlock wakes the waiter; this only bounds a wake-up lost to another process's unlock).
LOCAL_WAIT_MOST = 0.1
#: Seconds of waiting before the holder is first looked up, and between look-ups.
LOOK_AFTER = 0.05
LOOK_EVERY = 0.15

#: The value TileStache's Redis and Memcache caches store in a lock key; this app's
#: values begin with it (TileStache never reads the value).
LOCKED = "locked."

_COMPARE_AND_DELETE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class Claim(Protocol):
    """A request, as the status store knows it, that holds a metatile's cache lock
    (``reading.locks.Claim``)."""

    @property
    def host(self) -> str: ...
    @property
    def pid(self) -> int: ...
    #: The lock's instance it took (``LockBackend.current()`` while it holds it).
    @property
    def token(self) -> str: ...
    #: Its process is known dead.
    @property
    def dead(self) -> bool: ...


@dataclass(frozen=True)
class Identity:
    """This process as the locks it takes record it (``set_holder_identity``)."""

    #: The host name it records statuses under (the ``HOST`` setting).
    host: str
    #: Its PID namespace (``reading.liveness.pid_namespace``); None where unknown.
    namespace: int | None


@dataclass(frozen=True)
class Recorded:
    """The holder a lock records of itself: who took the lock as it stands."""

    #: The lock's instance (``LockBackend.current()``) the record belongs to.
    token: str
    host: str
    namespace: int | None
    pid: int
    #: Unix time it took the lock (for liveness: a process started later reuses the PID).
    taken: float


#: ``holders(layer, "z/x/y")``: the claims on a metatile's lock (``reading.locks``).
HolderSource = Callable[[str, str], Sequence[Claim]]
#: ``judge(recorded)``: the claim of the holder a lock records, dead or not, or None
#: where it cannot be judged (``reading.locks``).
RecordJudge = Callable[[Recorded], Claim | None]
#: ``identity()``: this process's identity for the locks it takes, or None.
IdentitySource = Callable[[], Identity | None]

_holder_source: HolderSource | None = None
_record_judge: RecordJudge | None = None
_identity: IdentitySource | None = None


def set_holder_source(source: HolderSource | None, judge: RecordJudge | None = None) -> None:
    """Where waiters learn who holds a lock (None: dead holders wait out the timeout),
    and who judges the holder a lock records (None: only in-flight entries count)."""
    global _holder_source, _record_judge
    _holder_source, _record_judge = source, judge


def set_holder_identity(identity: IdentitySource | None) -> None:
    """Who this process's locks say took them (None: they record no holder)."""
    global _identity
    _identity = identity


def _identity_now() -> Identity | None:
    source = _identity
    try:
        return None if source is None else source()
    except Exception:  # noqa: BLE001 - a lock is never refused for want of a name
        return None


def _holder_text(identity: Identity | None) -> str:
    """What a lock taken now records of its holder: ``<pid> <thread> <time>`` (unique),
    then ``<namespace or -> <host>`` when the identity is known (the host last, as it
    may hold spaces)."""
    unique = f"{os.getpid()} {threading.get_ident()} {time.time():.6f}"
    if identity is None:
        return unique
    namespace = "-" if identity.namespace is None else str(identity.namespace)
    return f"{unique} {namespace} {identity.host}"


def _parse_holder(token: str, text: str) -> Recorded | None:
    """The holder ``text`` (``_holder_text``) records, or None without an identity."""
    parts = text.split(" ", 4)
    if len(parts) != 5 or not parts[4]:
        return None
    pid, _, taken, namespace, host = parts
    try:
        return Recorded(
            token, host, None if namespace == "-" else int(namespace), int(pid), float(taken)
        )
    except ValueError:
        return None


class LockBackend:
    """One metatile lock of one cache, tried without waiting."""

    #: Names the lock in this process (the gate's key).
    key: str
    #: Taken over from a holder of this process (``hand_over``), not by ``try_lock``.
    handed: bool = False

    def try_lock(self) -> str | None:
        """Take the lock if free: its token, or None when it is held."""
        raise NotImplementedError

    def current(self) -> str | None:
        """The token of the lock as it stands, or None when it is free."""
        raise NotImplementedError

    def recorded(self, token: str) -> Recorded | None:
        """The holder the lock's instance ``token`` records, or None where it records
        none (a bare TileStache's lock, an older version's)."""
        if not token.startswith(LOCKED + " "):
            return None
        return _parse_holder(token, token[len(LOCKED) + 1 :])

    def releasing(self) -> None:
        """The lock's holder in this process is about to release it."""

    def release(self) -> bool:
        """Release the lock as the cache's own ``unlock`` would, where this backend can
        spare it working out the lock's name again: whether it did."""
        return False

    def renew(self, token: str) -> str:
        """Keep the lock's instance ``token`` as a new holder's, handed it in this
        process: the token it goes on with."""
        return token

    def break_if(self, token: str) -> bool:
        """Remove the lock if it is still the instance ``token``."""
        raise NotImplementedError

    def force(self) -> str | None:
        """Take the lock whoever holds it, as TileStache does once it is stale."""
        raise NotImplementedError


#: Seconds after its record's time within which a lock directory is the record's: its
#: holder records it just before ``mkdir``, so a directory made later is another's.
RECORD_LEAD_MOST = 0.5
#: Seconds the file system's coarse clock (a directory's change time) may lag the time.
CLOCK_SLACK = 0.05


def _made_at(token: str) -> float | None:
    """The change time of a Disk lock's instance ``token`` (``inode:ctime_ns``)."""
    _, _, ctime_ns = token.partition(":")
    return int(ctime_ns) / 1e9 if ctime_ns.isdigit() else None


class DiskLock(LockBackend):
    """``TileStache.Caches.Disk``: an empty directory beside the tile (``_lockpath``).

    Nothing goes inside the directory (a bare TileStache removes it with ``os.rmdir``):
    its holder is recorded in its process's holder file in the cache's root
    (``disk_holders``), one line (``_holder_text``). The holder records the lock
    *before* ``mkdir`` (unless its process holds it already), so a holder killed the
    moment it has the directory has named itself already, and removes the line if the
    directory was there. A line is the directory's only if the directory was made
    within ``RECORD_LEAD_MOST`` seconds after the line's time: a directory made by anyone
    else later (a bare TileStache's) is not taken for the line's.
    """

    def __init__(self, cache: Any, layer: Any, coord: Any, format: str):
        self.cache = cache
        self.path = cache._lockpath(layer, coord, format)
        self.holders = disk_holders.folder_of(cache.cachepath)
        self.key = "disk:" + self.path

    def try_lock(self) -> str | None:
        identity = _identity_now()
        own, added, text = None, False, ""
        umask = self.cache.umask
        old = os.umask(umask)  # the holder file's too: made by the cache's user rules
        try:
            if identity is not None:
                text = _holder_text(identity)
                own = disk_holders.own_file(self.holders, text)
                added = own is not None and own.add(self.path, text)
            os.makedirs(self.path, 0o777 & ~umask)
        except BaseException as error:  # held, or not made: not this one's
            if added and own is not None:
                own.remove(self.path)
            if isinstance(error, FileExistsError):
                return None
            raise
        finally:
            os.umask(old)
        if own is not None and not added:  # recorded by a thread here, now forced: ours
            own.add(self.path, text, replace=True)
        return self.current() or "?"

    def _records(self, token: str) -> list[tuple[disk_holders.Holder, Recorded]]:
        """The holder lines that record the lock's instance ``token``."""
        made_at = _made_at(token)
        if made_at is None:
            return []
        found = []
        for holder in disk_holders.holders_of(self.holders, self.path):
            recorded = _parse_holder(token, holder.text)
            if recorded is None:
                continue
            if recorded.taken - CLOCK_SLACK <= made_at <= recorded.taken + RECORD_LEAD_MOST:
                found.append((holder, recorded))
        return found

    def recorded(self, token: str) -> Recorded | None:
        found = [recorded for _, recorded in self._records(token)]
        _tidy_holder_files(self.holders)
        return max(found, key=lambda recorded: recorded.taken, default=None)

    def releasing(self) -> None:
        disk_holders.forget(self.holders, self.path)

    def release(self) -> bool:
        with contextlib.suppress(OSError):  # gone already, as TileStache's unlock allows
            os.rmdir(self.path)
        return True

    def current(self) -> str | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return f"{stat.st_ino}:{stat.st_ctime_ns}"

    def break_if(self, token: str) -> bool:
        if self.current() != token:
            return False
        for holder, _ in self._records(token):  # first: the next holder records itself
            disk_holders.drop(self.holders, holder)
        try:
            os.rmdir(self.path)
        except OSError:
            return False
        return True

    def force(self) -> str | None:
        with contextlib.suppress(OSError):
            os.rmdir(self.path)
        return self.try_lock()


def _tidy_holder_files(folder: str) -> None:
    """Remove the holder files of processes judged dead that record no lock still
    standing (``_record_judge``; without one, nothing is judged)."""
    judge = _record_judge
    if judge is None:
        return
    for name, header, held in disk_holders.files(folder):
        process = _parse_holder("", header)
        if process is None or process.pid == os.getpid():
            continue
        claim = judge(process)
        if claim is None or not claim.dead:
            continue
        standing = [holder for holder in held if os.path.isdir(holder.path)]
        if not standing:
            disk_holders.remove_file(folder, name)


def redis_tile_key(layer: Any, coord: Any, format: str, key_prefix: str) -> str:
    """``TileStache.Redis.tile_key``."""
    tile = f"{int(coord.zoom)}/{int(coord.column)}/{int(coord.row)}"
    return f"{key_prefix}/{layer.name()}/{tile}.{format}"


def memcache_tile_key(layer: Any, coord: Any, format: str, rev: Any, key_prefix: str) -> str:
    """``TileStache.Memcache.tile_key``."""
    tile = f"{int(coord.zoom)}/{int(coord.column)}/{int(coord.row)}"
    key = f"{key_prefix}/{rev}/{layer.name()}/{tile}.{format}"
    if len(key) < 250:
        return key
    prefix, infix, suffix = key[:100], key[100:-100], key[-100:]
    return prefix + hashlib.sha1(infix.encode("utf8")).hexdigest() + suffix


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisLock(LockBackend):
    """``TileStache.Redis.Cache``: ``SETNX <tile key>-lock`` (no expiry, as TileStache)."""

    def __init__(self, cache: Any, layer: Any, coord: Any, format: str):
        self.conn = cache.conn
        self.name = redis_tile_key(layer, coord, format, cache.key_prefix) + "-lock"
        self.key = f"redis:{id(self.conn)}:{self.name}"

    def try_lock(self) -> str | None:
        token = f"{LOCKED} {_holder_text(_identity_now())}"
        return token if self.conn.setnx(self.name, token) else None

    def current(self) -> str | None:
        return _text(self.conn.get(self.name))

    def break_if(self, token: str) -> bool:
        return bool(self.conn.eval(_COMPARE_AND_DELETE, 1, self.name, token))

    def force(self) -> str | None:
        token = f"{LOCKED} {_holder_text(_identity_now())}"
        self.conn.set(self.name, token)
        return token


class MemcacheLock(LockBackend):
    """``TileStache.Memcache.Cache``: ``add <tile key>-lock`` expiring after the stale timeout."""

    def __init__(self, cache: Any, layer: Any, coord: Any, format: str):
        self.client_class = sys.modules[type(cache).__module__].Client
        self.servers = cache.servers
        self.expiry = layer.stale_lock_timeout
        self.name = memcache_tile_key(layer, coord, format, cache.revision, cache.key_prefix)
        self.name += "-lock"
        self.key = f"memcache:{self.servers!r}:{self.name}"

    def _run(self, action: Callable[[Any], Any]) -> Any:
        client = self.client_class(self.servers)
        try:
            return action(client)
        finally:
            client.disconnect_all()

    def try_lock(self) -> str | None:
        token = f"{LOCKED} {_holder_text(_identity_now())}"
        added = self._run(lambda client: client.add(self.name, token, self.expiry))
        return token if added else None

    def current(self) -> str | None:
        return _text(self._run(lambda client: client.get(self.name)))

    def break_if(self, token: str) -> bool:
        # Memcache has no compare-and-delete without CAS ids: the window is one round trip.
        def action(client: Any) -> bool:
            if _text(client.get(self.name)) != token:
                return False
            return bool(client.delete(self.name))

        return bool(self._run(action))

    def force(self) -> str | None:
        token = f"{LOCKED} {_holder_text(_identity_now())}"
        self._run(lambda client: client.set(self.name, token, self.expiry))
        return token

    def renew(self, token: str) -> str:
        # The key expires ``stale_lock_timeout`` after it is set: a new holder's full term.
        self._run(lambda client: client.set(self.name, token, self.expiry))
        return token


#: The caches whose lock this module takes, by class (exactly these, not subclasses).
_BACKENDS: dict[tuple[str, str], Callable[[Any, Any, Any, str], LockBackend]] = {
    ("TileStache.Caches", "Disk"): DiskLock,
    ("TileStache.Redis", "Cache"): RedisLock,
    ("TileStache.Memcache", "Cache"): MemcacheLock,
}


def backend_for(cache: Any, layer: Any, coord: Any, format: str) -> LockBackend | None:
    """The lock of ``cache`` (a Multi cache's first tier) for this metatile, or None for
    a cache that keeps its own ``lock()``."""
    kind = type(cache)
    if (kind.__module__, kind.__name__) == ("TileStache.Caches", "Multi"):
        tiers = getattr(cache, "tiers", None)
        return backend_for(tiers[0], layer, coord, format) if tiers else None
    backend = _BACKENDS.get((kind.__module__, kind.__name__))
    return None if backend is None else backend(cache, layer, coord, format)


# -- waiting in this process ------------------------------------------------------


class Gate:
    """A lock's waiters in this process."""

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        #: Bumped by each release in this process, so a waiter never sleeps through one.
        self.releases = 0
        #: The waiters (threads inside ``acquire``'s wait).
        self.users = 0
        #: The token of the lock its holder here handed over (``hand_over``), still held,
        #: until a waiter takes it; set under ``_gates_lock`` and the condition both.
        self.handed: str | None = None


_gates: dict[str, Gate] = {}
#: Taken before a gate's condition, never while holding one.
_gates_lock = threading.Lock()
#: The locks a request of this process holds (key: token): their waiters here need
#: not poll, the release or the hand-over wakes them.
_held_here: dict[str, str] = {}


def _enter(key: str) -> Gate:
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = Gate()
        gate.users += 1
        return gate


def _leave(backend: LockBackend, gate: Gate) -> None:
    key = backend.key
    with _gates_lock:
        gate.users -= 1
        if gate.users > 0:
            return
        if _gates.get(key) is gate:
            del _gates[key]
        with gate.condition:
            orphan, gate.handed = gate.handed, None
    if orphan is not None:
        # Handed to waiters that all left without it (an exception while waiting):
        # nobody here holds it, so it is released as its holder would.
        with contextlib.suppress(Exception):
            backend.releasing()
            backend.break_if(orphan)
        released(key)


def hand_over(backend: LockBackend) -> bool:
    """Pass the lock this process's request holds to one of its waiters here, without
    releasing it: whether one took it over (False: release it as usual)."""
    key = backend.key
    with _gates_lock:
        gate = _gates.get(key)
        token = _held_here.get(key)
        if gate is None or token is None or gate.users <= 0:
            return False
    try:
        token = backend.renew(token)
    except Exception:  # noqa: BLE001 - not renewed: released and taken as usual
        return False
    with _gates_lock:
        if _gates.get(key) is not gate or gate.users <= 0:
            return False
        with gate.condition:
            if gate.handed is not None:
                return False
            gate.handed = token
            _held_here[key] = token
            gate.condition.notify()
    return True


def released(key: str) -> None:
    """The lock ``key`` was released in this process: wake its waiters here."""
    with _gates_lock:
        _held_here.pop(key, None)
        gate = _gates.get(key)
    if gate is not None:
        with gate.condition:
            gate.releases += 1
            gate.condition.notify_all()


def _held(key: str, token: str) -> None:
    with _gates_lock:
        _held_here[key] = token


# -- breaking dead holders' locks --------------------------------------------------


def _dead_claim(backend: LockBackend, claims: Sequence[Claim], token: str) -> Claim | None:
    """The dead process that took the lock's instance ``token``: named by its in-flight
    entry, or else by the lock's own record, judged by ``_record_judge``."""
    for claim in claims:
        if claim.dead and claim.token == token:
            return claim
    judge = _record_judge
    recorded = None if judge is None else backend.recorded(token)
    if judge is None or recorded is None:
        return None
    judged = judge(recorded)
    return judged if judged is not None and judged.dead and judged.token == token else None


def _break_dead(backend: LockBackend, layer: str, metatile: str) -> Claim | None:
    """Break the lock if, as it stands, a dead process took it: that claim, or None."""
    source = _holder_source
    if source is None:
        return None
    try:
        claims = source(layer, metatile)
        if _record_judge is None and not any(claim.dead for claim in claims):
            return None
        token = backend.current()
        claim = None if token is None else _dead_claim(backend, claims, token)
        if token is None or claim is None:
            return None
        return claim if backend.break_if(token) else None
    except Exception:  # noqa: BLE001 - a failed look-up leaves the stale timeout to act
        return None


@dataclass
class Acquired:
    """What ``acquire`` did: the lock's token, and the dead holders whose lock it broke."""

    token: str
    broken: list[Claim]


def acquire(backend: LockBackend, layer: str, metatile: str, stale_lock_timeout: float) -> Acquired:
    """Take the lock, waiting as this module says (blocks until it is held)."""
    token = backend.try_lock()
    if token is not None:
        _held(backend.key, token)
        return Acquired(token, [])
    gate = _enter(backend.key)
    try:
        return _wait(backend, gate, layer, metatile, stale_lock_timeout)
    finally:
        _leave(backend, gate)


def _wait(
    backend: LockBackend, gate: Gate, layer: str, metatile: str, stale_lock_timeout: float
) -> Acquired:
    start = time.monotonic()
    due, look = start + stale_lock_timeout, start + LOOK_AFTER
    delay, broken = RETRY_FIRST, list[Claim]()
    while True:
        with gate.condition:
            token, gate.handed = gate.handed, None
            releases = gate.releases
        if token is not None:  # handed over by its holder here: held already
            backend.handed = True
            return Acquired(token, broken)
        token = backend.try_lock()
        now = time.monotonic()
        if token is None and now >= due:
            token = backend.force()
        if token is not None:
            _held(backend.key, token)
            return Acquired(token, broken)
        # A holder that is a request of this process is alive: nobody to look up.
        here = backend.key in _held_here
        if now >= look and not here:
            look = now + LOOK_EVERY
            claim = _break_dead(backend, layer, metatile)
            if claim is not None:
                broken.append(claim)
                continue
        with gate.condition:
            if gate.handed is None and gate.releases == releases:
                gate.condition.wait(LOCAL_WAIT_MOST if here else delay)
        if not here:
            delay = min(delay * 2, RETRY_MOST)


def _after_fork_in_child() -> None:
    # The parent's waiters and locks are the parent's.
    global _gates_lock
    _gates.clear()
    _held_here.clear()
    _gates_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
