"""The tile statistics' format, defined once: what is counted, and how it is stored.

Each statistic is a small frozen record (``RequestCount``, ``ResponseBucket``,
``ResponseSeconds``, ``LockWaitBucket``, ``LockWaitSeconds``, ``LockWaitMillis``,
``LocksBroken``, and seeding's ``SeedCount`` and ``SeedSeconds``) whose labels are
its fields. A record names its own field in the statistics hashes
(``Statistic.field``: a JSON array of its kind and its labels, since layer names
are free text), and ``parse`` turns such a field name back into a record, or
None for one this app did not write. Zoom and bucket are never crossed: that
keeps the fields per layer at ``zooms x outcomes + outcomes x buckets`` rather
than their product.

The field names are what Redis already holds: changing a kind, the order of a
record's fields or the buckets changes what older data means; keep them.

Beside the records: the slowest requests (``SlowTile`` as counted,
``SlowRequest`` as stored and read back), and the two reads of the statistics
that cross the storage seam (``StatTotals``, ``StatMinutes``).

Adding a statistic: a record class here (with ``@_statistic``), its counting in
``counting``, and its reading where it is shown (``tiles_report``, ``metrics``);
the store writes and reads every record alike (one of many fields that nothing
totals, as ``LockWaitMillis``, sets ``CUMULATIVE = False``: per minute only).

Core module: imports the standard library only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

#: Upper bounds (seconds) of the response and lock-wait buckets, from a warm
#: tile read (5 ms) to a render that times out (30 s); one more bucket, +Inf,
#: follows. Changing them changes what older Redis data means: keep them.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Number of buckets, +Inf included; bucket ``len(BUCKETS)`` is +Inf.
BUCKET_COUNT = len(BUCKETS) + 1

HIT, RENDERED, CLIENT_ERROR, SERVER_ERROR = "hit", "rendered", "client_error", "server_error"
OUTCOMES = (HIT, RENDERED, CLIENT_ERROR, SERVER_ERROR)

#: The layer label of a path that names no configured layer (an unknown
#: layer, the index, a bad path), so user input never becomes a label.
OTHER_LAYER = "(other)"
#: The zoom of a request whose path holds no zoom within range.
NO_ZOOM = -1
#: The longest lock wait counted by the millisecond (``LockWaitMillis``): 30 s, the last
#: finite bucket. A longer wait is left to the buckets.
LOCK_WAIT_MS_CAP = 30_000
#: Distinct milliseconds of lock waits one process counts per minute and layer
#: (``LockWaitMillis``); a wait of another millisecond past them is left to the buckets.
#: Bounds a minute's fields per layer to ``processes x LOCK_WAIT_MS_KEPT``.
LOCK_WAIT_MS_KEPT = 512
#: Slowest tiles kept per minute.
SLOWEST = 10
#: The longest request a slow tile read back may name (a year); a longer one was not
#: written by this app.
MAX_SECONDS = 365 * 86400.0


# -- the statistics -----------------------------------------------------------


class Statistic:
    """One statistic with its labels: a field of the statistics hashes."""

    __slots__ = ()

    #: The first element of the field name; unique per record class.
    KIND: ClassVar[str]
    #: Whether the store adds it to the cumulative hash too; False for a statistic kept
    #: per minute only (its fields are many, and nothing reads their totals).
    CUMULATIVE: ClassVar[bool] = True
    #: The labels' names and types, in field order (set by ``_statistic``).
    NAMES: ClassVar[tuple[str, ...]]
    SHAPE: ClassVar[tuple[type, ...]]

    @property
    def field(self) -> str:
        """The hash field naming this record (remembered: each send names the same few)."""
        return field_name(self)

    def labels(self) -> tuple[Any, ...]:
        """The record's labels, in field order."""
        return tuple(getattr(self, name) for name in self.NAMES)


#: Record classes by kind, for ``parse``.
_KINDS: dict[str, type[Statistic]] = {}

S = TypeVar("S", bound=type[Statistic])

#: What a label of a given name must satisfy beside its type.
_LABEL_CHECKS: dict[str, Callable[[Any], bool]] = {
    "outcome": lambda outcome: outcome in OUTCOMES,
    "bucket": lambda bucket: 0 <= bucket < BUCKET_COUNT,
    "ms": lambda ms: 0 <= ms <= LOCK_WAIT_MS_CAP,
}


def _statistic(cls: S) -> S:
    """Register a record class under its kind, its label types read from its fields."""
    hints = typing.get_type_hints(cls)
    cls.NAMES = tuple(item.name for item in dataclasses.fields(typing.cast(Any, cls)))
    cls.SHAPE = tuple(hints[name] for name in cls.NAMES)
    assert cls.KIND not in _KINDS, cls.KIND
    _KINDS[cls.KIND] = cls
    return cls


@_statistic
@dataclass(frozen=True, slots=True)
class RequestCount(Statistic):
    """Requests by layer, zoom and outcome."""

    KIND: ClassVar[str] = "n"
    layer: str
    zoom: int
    outcome: str


@_statistic
@dataclass(frozen=True, slots=True)
class ResponseBucket(Statistic):
    """Requests by layer, outcome and response-time bucket."""

    KIND: ClassVar[str] = "b"
    layer: str
    outcome: str
    bucket: int


@_statistic
@dataclass(frozen=True, slots=True)
class ResponseSeconds(Statistic):
    """Response seconds summed by layer and outcome (and, per minute, the slowest)."""

    KIND: ClassVar[str] = "s"
    layer: str
    outcome: str


@_statistic
@dataclass(frozen=True, slots=True)
class LockWaitBucket(Statistic):
    """Requests that waited for the cache lock, by layer and wait bucket."""

    KIND: ClassVar[str] = "w"
    layer: str
    bucket: int


@_statistic
@dataclass(frozen=True, slots=True)
class LockWaitSeconds(Statistic):
    """Cache lock wait seconds summed by layer."""

    KIND: ClassVar[str] = "ws"
    layer: str


@_statistic
@dataclass(frozen=True, slots=True)
class LockWaitMillis(Statistic):
    """Lock waits by layer and length, rounded to the millisecond (0 to
    ``LOCK_WAIT_MS_CAP``), per minute only: the waits themselves, so their percentiles
    are exact to the millisecond. A wait left out (longer than the cap, or a millisecond
    past a process's ``LOCK_WAIT_MS_KEPT`` of the minute) is in the buckets alone: a
    window whose millisecond counts fall short of its bucket counts is estimated."""

    KIND: ClassVar[str] = "wm"
    CUMULATIVE: ClassVar[bool] = False
    layer: str
    ms: int


@_statistic
@dataclass(frozen=True, slots=True)
class LocksBroken(Statistic):
    """Metatile locks of dead holders broken by waiting requests, by layer."""

    KIND: ClassVar[str] = "lb"
    layer: str


@_statistic
@dataclass(frozen=True, slots=True)
class SeedCount(Statistic):
    """Tiles a seeding job rendered through the layer, by layer, zoom and outcome: kept
    apart from ``RequestCount``, so traffic's figures are traffic's alone."""

    KIND: ClassVar[str] = "seed"
    layer: str
    zoom: int
    outcome: str


@_statistic
@dataclass(frozen=True, slots=True)
class SeedSeconds(Statistic):
    """Seconds seeding spent per layer and outcome (a metatile's render is one)."""

    KIND: ClassVar[str] = "seeds"
    layer: str
    outcome: str


@functools.lru_cache(maxsize=4096)
def field_name(record: Statistic) -> str:
    """``record``'s hash field: a JSON array of its kind and its labels.

    Remembered: each send names the same few fields again."""
    return json.dumps([record.KIND, *record.labels()], separators=(",", ":"))


def parse(name: Any) -> Statistic | None:
    """The record a hash field names, or None for a field this app did not write."""
    try:
        text = name.decode("utf-8") if isinstance(name, bytes) else str(name)
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: not ours
        return None
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        return None
    cls = _KINDS.get(value[0])
    labels = value[1:]
    if cls is None or len(labels) != len(cls.SHAPE):
        return None
    if not all(type(label) is kind for label, kind in zip(labels, cls.SHAPE, strict=True)):
        return None
    for name, label in zip(cls.NAMES, labels, strict=True):
        check = _LABEL_CHECKS.get(name)
        if check is not None and not check(label):
            return None
    return cls(*labels)


# -- the slowest requests ---------------------------------------------------------


@dataclass(frozen=True, order=True)
class SlowTile:
    """One slow request as the writer counts it (ordered slowest last)."""

    seconds: float
    when: float
    layer: str
    zoom: int
    path: str

    def as_json(self, host: str, pid: int) -> str:
        """The stored form: a ``SlowRequest`` of the process ``host``, ``pid``."""
        return json.dumps(
            {
                "seconds": round(self.seconds, 6),
                "when": round(self.when, 3),
                "layer": self.layer,
                "zoom": self.zoom,
                "path": self.path,
                "host": host,
                "pid": pid,
            }
        )


#: The stored slow request's members and the JSON types each may have.
_SLOW_SHAPE: dict[str, tuple[type, ...]] = {
    "seconds": (int, float),
    "when": (int, float),
    "layer": (str,),
    "zoom": (int,),
    "path": (str,),
    "host": (str,),
    "pid": (int,),
}


@dataclass(frozen=True)
class SlowRequest:
    """One slow request as stored (``SlowTile.as_json``) and read back."""

    seconds: float
    when: float
    layer: str
    zoom: int
    path: str
    host: str
    pid: int

    @classmethod
    def parse(cls, member: Any) -> SlowRequest | None:
        """The slow request a stored member holds, or None if it holds none."""
        try:
            text = member.decode("utf-8") if isinstance(member, bytes) else str(member)
            value = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: not ours
            return None
        if not isinstance(value, dict):
            return None
        for name, kinds in _SLOW_SHAPE.items():
            if type(value.get(name)) not in kinds:
                return None
        try:
            seconds, when = float(value["seconds"]), float(value["when"])
        except OverflowError:  # a whole number too large for a float
            return None
        if not (0.0 <= seconds <= MAX_SECONDS and math.isfinite(when)):
            return None
        return cls(
            seconds, when, value["layer"], value["zoom"], value["path"], value["host"], value["pid"]
        )


# -- what is read back --------------------------------------------------------


@dataclass(frozen=True)
class StatTotals:
    """Cumulative statistics: each record's total, and drops per host."""

    fields: dict[Statistic, float]
    dropped: dict[str, float]
    #: Entries that could not be read (a key of another type, a field or value this app
    #: did not write).
    skipped: int = 0


@dataclass(frozen=True)
class StatMinutes:
    """Per-minute statistics (minute = unix time // 60), newest minute last."""

    #: minute -> record -> total.
    fields: dict[int, dict[Statistic, float]]
    #: minute -> record -> its largest value of the minute (``ResponseSeconds``: the
    #: slowest request).
    maxima: dict[int, dict[Statistic, float]]
    #: The slowest requests of the minutes read, slowest first.
    slowest: list[SlowRequest]
    #: Entries that could not be read (a key of another type, a field, value or member
    #: this app did not write).
    skipped: int = 0
