"""Warm and cold throughput, in alternating rounds so every ratio is paired.

Each round runs every server once, in an order that reverses from one round
to the next, so a drift in the machine's load falls evenly on all of them.
A ratio is taken between two runs of the same round only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.support.http import request

from .load import MAPNIK_ZOOM, WARM_GRID, Run, run_load, warm_path
from .servers import Server


@dataclass
class Row:
    """One raw measurement: a server's run in one round."""

    figure: str
    round: int
    server: str
    requests: int
    seconds: float
    errors: int
    #: CPU seconds the server's processes used during the run.
    cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def per_cpu(self) -> float:
        """Requests per CPU second of the server: steadier than the rate on a busy machine."""
        return self.requests / self.cpu if self.cpu else 0.0


def settle(server: Server, count: int = 20) -> None:
    """A few warm requests, so a server idle for a while is back in the CPU caches."""
    for index in range(count):
        request(server.base, warm_path(server.prefix, index), timeout=30)


def rounds(
    figure: str,
    servers: Sequence[Server],
    rounds: int,
    seconds: float,
    load: Callable[[Server, int], Run],
    progress: Callable[[str], None],
    first: int = 0,
) -> list[Row]:
    rows = []
    for number in range(first, first + rounds):
        order = list(servers) if number % 2 == 0 else list(reversed(servers))
        for server in order:
            settle(server)
            cpu = server.cpu_seconds()
            run = load(server, number)
            cpu = server.cpu_seconds() - cpu
            rows.append(
                Row(figure, number, server.name, run.requests, run.seconds, run.errors, cpu)
            )
            progress(
                f"{figure} round {number - first + 1}/{rounds}: {server.name} {run.rate:,.0f} req/s"
            )
            time.sleep(0.2)
    return rows


#: Where the rounds of the warm pass that only gives context start: their rows share a
#: figure with the judged pass's, and pair within their own rounds.
CONTEXT_FIRST_ROUND = 1000


def warm_rounds(
    servers: Sequence[Server],
    count: int,
    seconds: float,
    progress: Callable[[str], None],
    first: int = 0,
) -> list[Row]:
    """Every run cycles over the same cached tiles."""

    def load(server: Server, number: int) -> Run:
        return run_load(server.port, server.prefix, "warm", WARM_GRID, seconds)

    return rounds("warm", servers, count, seconds, load, progress, first)


def cold_rounds(
    servers: Sequence[Server],
    count: int,
    seconds: float,
    first_row: int,
    progress: Callable[[str], None],
) -> list[Row]:
    """Every cold run asks for tiles of a zoom-20 row of its own, so each is rendered."""
    rows_used = iter(range(first_row, first_row + 10_000))

    def load(server: Server, number: int) -> Run:
        return run_load(server.port, server.prefix, "cold", next(rows_used), seconds)

    return rounds("cold", servers, count, seconds, load, progress)


#: Rows of the Mapnik layer's zoom 10 the cold Mapnik runs use (about 57° N to 33° N).
MAPNIK_FIRST_ROW = 300
#: A metatile's height: runs four rows apart never share a metatile.
MAPNIK_ROW_STEP = 4


def mapnik_rounds(
    servers: Sequence[Server], count: int, seconds: float, progress: Callable[[str], None]
) -> list[Row]:
    """Cold tiles of the Mapnik layer, each run on a metatile row of its own.

    The benchmark empties the tile cache before it starts, so every render is real.
    """
    rows_used = iter(range(MAPNIK_FIRST_ROW, 2**MAPNIK_ZOOM, MAPNIK_ROW_STEP))

    def load(server: Server, number: int) -> Run:
        return run_load(server.port, server.prefix, "mapnik", next(rows_used), seconds)

    return rounds("mapnik", servers, count, seconds, load, progress)


#: The cross-check of the warm targets: fewer, longer runs of the same three servers.
ALTERNATION_ROUNDS = 9
ALTERNATION_SECONDS = 8


def alternation_rounds(
    servers: Sequence[Server], count: int, seconds: float, progress: Callable[[str], None]
) -> list[Row]:
    """Warm runs of ``seconds`` each, the servers in plain alternation (the order reversing
    every round, as in every pass), for a second method beside the judged pass's many
    short rounds: whether the two agree, and how far one run's ratio scatters."""

    def load(server: Server, number: int) -> Run:
        return run_load(server.port, server.prefix, "warm", WARM_GRID, seconds)

    return rounds("alternation", servers, count, seconds, load, progress)
