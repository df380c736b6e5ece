"""Where the status log and the statistics live: the seam (``interface``) and its
Redis implementation (``redis_store``)."""

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
    StatusStore,
    StoreRejected,
    StoreUnavailable,
)
from .redis_store import RedisStore

__all__ = [
    "MAX_BUSY_READ",
    "MAX_PID",
    "BatchNumber",
    "Events",
    "Head",
    "InFlightUpdate",
    "ProcessLog",
    "RedisStore",
    "Registry",
    "Snapshot",
    "StatMinutes",
    "StatTotals",
    "StatusStore",
    "StoreRejected",
    "StoreUnavailable",
]
