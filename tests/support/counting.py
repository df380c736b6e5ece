"""A redis-py connection that counts what crosses it: connections, round trips, commands.

Used by ``tests/test_redis_cost.py`` to hold the number of Redis round trips
per request and per ``get_recent()`` fixed, without timing anything; anything
else that wants to count (a benchmark) imports it from here. Pass the class
made by ``counting_connection(counts)`` as ``connection_class`` to a redis-py
pool (or django-redis's ``CONNECTION_POOL_KWARGS``).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis


@dataclass
class Counts:
    """What the connections of one class sent, with the thread that sent it."""

    connections: int = 0
    round_trips: int = 0
    commands: int = 0
    names: Counter[str] = field(default_factory=Counter)
    threads: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self.lock:
            self.connections = self.round_trips = self.commands = 0
            self.names.clear()
            self.threads.clear()

    def _commands(self, names: list[Any]) -> None:
        with self.lock:
            self.commands += len(names)
            self.names.update(_name(n) for n in names)


def _name(value: Any) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.split()[0].upper()


def counting_connection(counts: Counts) -> type[redis.Connection]:
    """A ``redis.Connection`` subclass recording into ``counts``."""

    class CountingConnection(redis.Connection):
        def _connect(self) -> Any:
            with counts.lock:
                counts.connections += 1
            return super()._connect()

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            with counts.lock:
                counts.round_trips += 1
                counts.threads[threading.get_ident()] += 1
            super().send_packed_command(command, check_health)

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            counts._commands([args[0]])
            super().send_command(*args, **kwargs)

        def pack_commands(self, commands: Any) -> Any:
            commands = list(commands)
            counts._commands([args[0] for args in commands])
            return super().pack_commands(commands)

    return CountingConnection
