"""The figures, the targets they must meet, and ``RESULTS.md``.

``RESULTS.md`` holds the newest run and the one before it, each in full with
its raw rows, and compares the ratios the targets are judged on: a target is
only as good as the figure is steady, so each ratio's median must stay within
``STEADY`` of the previous run's. Each run section starts with a comment
carrying its ratios as JSON, which is how the next run reads them back.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .in_process import VARIANTS, CpuRow
from .metatile_locks import SERVERS as LOCK_SERVERS
from .metatile_locks import LockResults
from .redis_usage import Usage
from .stats import Spread, paired_ratios
from .status_reads import PROCESS_COUNTS, UNRELATED, ReadRow
from .status_scale import MAX_BYTES, MAX_GROWTH, MAX_SECONDS, PROCESSES, ScaleRow
from .throughput import Row

LABELS = {
    "bare": "TileStache `WSGITileServer`, nothing recorded",
    "original": "original StatusServer pattern (new client per event, 3 commands, KEYS)",
    "floor": "plain Django view calling the layer (the floor)",
    "django": "tile view through Django (`FAST_PATH: False`), recording",
    "off": "fast path, `ENABLED: False`",
    "on": "fast path, recording (this app, as the example project serves)",
}


@dataclass
class Results:
    environment: dict[str, str]
    parameters: dict[str, Any]
    warm: list[Row] = field(default_factory=list)
    cold: list[Row] = field(default_factory=list)
    #: Cold tiles of the Mapnik layer; empty where Mapnik is not installed.
    mapnik: list[Row] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    visibility: list[float] = field(default_factory=list)
    memory_per_process: float = 0.0
    statistics_memory: Any = None
    reads: list[ReadRow] = field(default_factory=list)
    scale: list[ScaleRow] = field(default_factory=list)
    in_process: list[CpuRow] = field(default_factory=list)
    #: The metatile lock scenarios; None where they were not run.
    locks: LockResults | None = None
    #: Long warm runs in plain alternation (the cross-check; ``throughput.alternation_rounds``).
    alternation: list[Row] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Target:
    text: str
    measured: str
    met: bool
    #: The median of a paired ratio the target is judged on (compared between runs).
    ratio: float | None = None
    #: Not judged (a cross-check): what it says instead of "yes" or "no".
    note: str = ""

    @property
    def verdict(self) -> str:
        return self.note or ("yes" if self.met else "**no**")


#: How far a judged ratio's median may move from one run to the next.
STEADY = 0.03
#: Starts the line that opens each run's section (then its JSON, then `` -->``).
RUN_MARK = "<!-- benchmark run: "

#: ``python -m benchmarks.seeding --results`` writes its section between these marks;
#: a run of ``python -m benchmarks`` carries it over unchanged.
SEEDING_START = "<!-- seeding benchmark -->"
SEEDING_END = "<!-- /seeding benchmark -->"


def ratio(rows: list[Row], numerator: str, denominator: str, value: str = "rate") -> Spread:
    """Paired ratio of throughput (``rate``) or of requests per CPU second (``per_cpu``)."""
    return Spread.of(paired_ratios(rows, numerator, denominator, "server", value, "round"))


def read_spread(rows: list[ReadRow], reader: str, processes: int, unrelated: int) -> Spread:
    return Spread.of(
        r.seconds
        for r in rows
        if r.reader == reader and r.processes == processes and r.unrelated == unrelated
    )


def read_ratio(rows: list[ReadRow], reader: str, processes: int) -> Spread:
    selected = [r for r in rows if r.reader == reader and r.processes == processes]
    return Spread.of(paired_ratios(selected, UNRELATED, 0, "unrelated", "seconds", "repeat"))


def usage_of(results: Results, server: str, kind: str) -> Usage:
    return next(u for u in results.usage if u.server == server and u.kind == kind)


def cpu_ratio(rows: list[CpuRow], numerator: str, denominator: str) -> Spread:
    """Paired ratio of requests per CPU second (in-process), within each round."""
    return Spread.of(paired_ratios(rows, numerator, denominator, "variant", "per_cpu", "round"))


def in_process_targets(rows: list[CpuRow]) -> list[Target]:
    fast_bare = cpu_ratio(rows, "fast_on", "bare")
    return [
        Target(
            "in-process, warm: recording (fast path) ≥ 0.70 × bare TileStache",
            fast_bare.format(),
            fast_bare.median >= 0.70,
            fast_bare.median,
        )
    ]


#: Milliseconds a burst's waiters may take beyond the render (``lock_targets``).
LOCK_SLACK = 0.015
#: The most a waiter's p50 may be of bare TileStache's, and the most a request after a
#: killed holder may take (seconds).
LOCK_P50_RATIO = 0.6
STALE_MOST = 1.0


def lock_targets(locks: LockResults) -> list[Target]:
    """The metatile lock targets. A burst's render is bare TileStache's first request of
    the same metatile in the same round: it renders (the ``slow`` provider's fixed 100 ms,
    or Mapnik), cuts, encodes and saves the metatile, and waits for nothing."""
    found = []
    for layer in locks.layers():
        name = f"{locks.render * 1000:.0f} ms provider" if layer == "slow" else "Mapnik `world`"
        budgets = [row.holder + LOCK_SLACK for row in locks.rows(layer, "bare")]
        p50 = Spread.of(row.p50 for row in locks.rows(layer, "app"))
        budget = statistics.median(budgets)
        found.append(
            Target(
                f"cold metatile burst, {name}: waiters' p50 ≤ render + 15 ms",
                f"{p50.format(0, 1000, ' ms')}, render + 15 ms: {budget * 1000:.0f} ms",
                p50.median <= budget,
            )
        )
        ratio_ = locks.p50_ratio(layer)
        found.append(
            Target(
                f"cold metatile burst, {name}: waiters' p50 ≤ {LOCK_P50_RATIO} × bare TileStache",
                ratio_.format(),
                ratio_.median <= LOCK_P50_RATIO,
                ratio_.median,
            )
        )
    if "app" in locks.stale:
        found.append(
            Target(
                f"stale lock: a tile of a SIGKILLed holder's metatile in ≤ {STALE_MOST:.0f} s",
                f"{locks.stale['app']:.2f} s (bare TileStache: "
                f"{locks.stale.get('bare', float('nan')):.2f} s)",
                locks.stale["app"] <= STALE_MOST,
            )
        )
    return found


#: The widest spread of a cross-check's ratio (the farther of its min and max from its
#: median, as a share of it) at which it can still tell a 3 % difference.
CROSS_CHECK_SPREAD = 0.03
#: The ratios the cross-check compares, with the judged targets' thresholds.
CROSS_CHECKED = (
    ("on", "off", "recording / `ENABLED: False`", 0.97),
    ("on", "bare", "recording / bare TileStache", 0.90),
)


def spread_width(spread: Spread) -> float:
    """How far a ratio's min or max lies from its median, as a share of the median."""
    if not spread.median:
        return float("inf")
    return max(spread.median - spread.low, spread.high - spread.median) / spread.median


def cross_checks(rows: list[Row]) -> list[Target]:
    """The long alternating runs beside the judged targets: never judged themselves, they
    say whether they agree, or that their spread is too wide to tell 3 %."""
    if not rows:
        return []
    rounds = len({row.round for row in rows})
    seconds = round(statistics.median(row.seconds for row in rows))
    found = []
    for numerator, denominator, label, threshold in CROSS_CHECKED:
        spread = ratio(rows, numerator, denominator)
        width = spread_width(spread)
        if width > CROSS_CHECK_SPREAD:
            note = f"not judged: spread ±{width:.1%}, too wide to judge {CROSS_CHECK_SPREAD:.0%}"
        else:
            side = "≥" if spread.median >= threshold else "<"
            note = f"not judged: spread ±{width:.1%}; median {side} {threshold:.2f}"
        found.append(
            Target(
                f"cross-check, warm ({rounds} × {seconds} s alternating): {label}",
                f"{spread.format()}, spread ±{width:.1%}",
                True,
                note=note,
            )
        )
    return found


def lock_markdown(locks: LockResults) -> list[str]:
    """The metatile lock section: bursts per layer and server, the stale lock, raw rows."""
    out = [
        "### Metatile locks (gunicorn gthread, 1 worker of 17 threads per server)",
        "",
        f"Cold metatile bursts: 16 concurrent requests of one new 4 × 4 metatile, the first "
        f"sent 10 ms ahead (it renders; its latency is the holder's), {locks.rounds} rounds, "
        "both servers on the same metatile in each round; the ratio is paired within a round.",
        "",
    ]
    rows = []
    for layer in locks.layers():
        for name in LOCK_SERVERS:
            label = LABELS["bare"] if name == "bare" else LABELS["on"]
            rows.append(
                [
                    layer,
                    label,
                    locks.spread(layer, name, "holder").format(0, 1000),
                    locks.spread(layer, name, "p50").format(0, 1000),
                    locks.spread(layer, name, "worst").format(0, 1000),
                    locks.p50_ratio(layer).format() if name == "app" else "1.00",
                ]
            )
    out += _table(
        ["layer", "server", "holder ms", "waiters' p50 ms", "waiters' max ms", "p50 × bare"],
        rows,
    )
    if locks.stale:
        out += [
            "",
            "After a SIGKILLed holder, a request of its metatile took: "
            + ", ".join(
                f"{LABELS['bare'] if name == 'bare' else 'this app'} {seconds:.2f} s"
                for name, seconds in locks.stale.items()
            )
            + ".",
        ]
    out += ["", "Bursts (ms: the holder, then each waiter):", "", "```"]
    out += [
        f"{r.round} {r.server} {r.layer} {r.holder * 1000:.0f} "
        + " ".join(f"{w * 1000:.0f}" for w in r.waiters)
        for r in locks.bursts
    ]
    return [*out, "```", ""]


def targets(results: Results) -> list[Target]:
    found = []
    warm, cold = results.warm, results.cold
    on_off, on_bare, cold_on_bare = (
        ratio(warm, "on", "off"),
        ratio(warm, "on", "bare"),
        ratio(cold, "on", "bare"),
    )
    found.append(
        Target(
            "warm: recording ≥ 0.97 × `ENABLED: False`",
            on_off.format(),
            on_off.median >= 0.97,
            on_off.median,
        )
    )
    found.append(
        Target(
            "warm: recording ≥ 0.90 × bare TileStache",
            on_bare.format(),
            on_bare.median >= 0.90,
            on_bare.median,
        )
    )
    found.append(
        Target(
            "cold: recording ≥ 0.97 × bare TileStache",
            cold_on_bare.format(),
            cold_on_bare.median >= 0.97,
            cold_on_bare.median,
        )
    )
    found += in_process_targets(results.in_process)
    found += cross_checks(results.alternation)
    for kind in ("warm", "cold"):
        usage = usage_of(results, "on", kind)
        found.append(
            Target(
                f"{kind}: 0 new Redis connections per request",
                f"{usage.connections} in {usage.requests} requests",
                usage.connections == 0,
            )
        )
        trips = usage.round_trips / usage.events
        found.append(
            Target(
                f"{kind}: far fewer than one Redis round trip per event (≤ 0.2)",
                f"{trips:.3f}",
                trips <= 0.2,
            )
        )
    seen = max(results.visibility)
    found.append(
        Target("events visible within a second", f"at most {seen * 1000:.0f} ms", seen < 1.0)
    )
    for reader in ("get_recent", "status page"):
        for processes in PROCESS_COUNTS:
            spread = read_ratio(results.reads, reader, processes)
            found.append(
                Target(
                    f"{reader}, {processes} processes: 1,000,000 unrelated keys ≤ 1.1 × none",
                    spread.format(),
                    spread.median <= 1.1,
                )
            )
    page = read_spread(results.reads, "status page", 1000, 0)
    found.append(
        Target(
            "status page, 1000 processes, in under 150 ms",
            page.format(1, 1000, " ms"),
            page.median < 0.150,
        )
    )
    for row in results.scale:
        found.append(
            Target(
                f"status page ({row.format}), {PROCESSES:,} processes: under "
                f"{MAX_SECONDS:.0f} s, {MAX_BYTES // 1_000_000} MB, "
                f"{MAX_GROWTH // 2**20} MB of memory",
                f"{row.seconds * 1000:.0f} ms, {row.bytes / 1000:.0f} kB, "
                f"{row.peak_bytes / 2**20:.1f} MB",
                row.seconds < MAX_SECONDS and row.bytes < MAX_BYTES and row.peak_bytes < MAX_GROWTH,
            )
        )
    if results.locks is not None:
        found += lock_targets(results.locks)
    return found


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def targets_table(checks: list[Target]) -> list[str]:
    return _table(["target", "measured", "met"], [[t.text, t.measured, t.verdict] for t in checks])


def _throughput_table(rows: list[Row], names: tuple[str, ...]) -> list[str]:
    table = []
    for name in names:
        rates = Spread.of(r.rate for r in rows if r.server == name)
        per_cpu = Spread.of(r.per_cpu for r in rows if r.server == name)
        table.append(
            [
                LABELS[name],
                rates.format(0),
                ratio(rows, name, "bare").format(),
                per_cpu.format(0),
                ratio(rows, name, "bare", "per_cpu").format(),
            ]
        )
    return _table(["server", "requests/s", "× bare", "requests per CPU second", "× bare"], table)


def alternation_markdown(rows: list[Row], level: str = "###") -> list[str]:
    """The cross-check: long warm runs of bare, `ENABLED: False` and recording alternating."""
    if not rows:
        return []
    rounds = len({row.round for row in rows})
    seconds = round(statistics.median(row.seconds for row in rows))
    table = []
    for numerator, denominator, label, _ in CROSS_CHECKED:
        by_rate = ratio(rows, numerator, denominator)
        by_cpu = ratio(rows, numerator, denominator, "per_cpu")
        table.append(
            [
                label,
                by_rate.format(),
                f"±{spread_width(by_rate):.1%}",
                by_cpu.format(),
                f"±{spread_width(by_cpu):.1%}",
            ]
        )
    return [
        f"{level} Warm tiles, long runs in plain alternation (cross-check, not judged)",
        "",
        f"{rounds} rounds of one {seconds} s wrk run per server (bare TileStache, "
        "`ENABLED: False`, recording), the order reversing every round; each ratio is the "
        "median [min–max] of ratios paired within a round, and its spread the farther of min "
        "and max from the median. A spread wider than "
        f"±{CROSS_CHECK_SPREAD:.0%} cannot tell a {CROSS_CHECK_SPREAD:.0%} difference, and says "
        "so in the targets table.",
        "",
        *_throughput_table(rows, ("bare", "off", "on")),
        "",
        *_table(
            ["paired ratio", "throughput", "spread", "requests per CPU second", "spread"],
            table,
        ),
    ]


def where_the_time_goes(rows: list[CpuRow]) -> list[str]:
    """Microseconds per warm tile by part: medians, and differences of medians."""
    names = {r.variant for r in rows}
    if not {"bare", "fast_off", "fast_on", "django_off"} <= names:
        return []

    def micros(name: str) -> float:
        return Spread.of(r.micros for r in rows if r.variant == name).median

    bare, off, on, django = (micros(n) for n in ("bare", "fast_off", "fast_on", "django_off"))
    return [
        "Where the time goes, per warm tile (medians of this run's CPU µs; a difference of two "
        "medians for the last two):",
        "",
        *_table(
            ["part", "CPU µs"],
            [
                [
                    "TileStache: bare `WSGITileServer` (its path parsing, the layer, the Disk "
                    "cache's read, its WSGI glue)",
                    f"{bare:.0f}",
                ],
                [
                    "the fast path with recording off (TileStache's layer and cache read, "
                    "the path check, the WSGI answer)",
                    f"{off:.0f}",
                ],
                [
                    "recording (the messages, the in-flight entry and its phases, the "
                    "writer's counting and sends): fast path on − off",
                    f"{on - off:.0f}",
                ],
                [
                    "Django's request machinery (middleware, URL resolution, request and "
                    "response objects, signals): through Django − fast path, both off",
                    f"{django - off:.0f}",
                ],
            ],
        ),
    ]


def in_process_markdown(
    rows: list[CpuRow], with_targets: bool = True, level: str = "##"
) -> list[str]:
    """The in-process section: CPU µs per warm tile, × bare, paired ratios (and its target)."""
    rounds = len({r.round for r in rows})
    table = []
    names = [name for name in VARIANTS if any(r.variant == name for r in rows)]
    for name in names:
        micros = Spread.of(r.micros for r in rows if r.variant == name)
        table.append([VARIANTS[name][0], micros.format(0), cpu_ratio(rows, name, "bare").format()])
    pairs = [
        ("fast_on", "fast_off", "fast path: recording / `ENABLED: False`"),
        ("django_on", "django_off", "through Django: recording / `ENABLED: False`"),
        ("fast_on", "django_on", "recording: fast path / through Django"),
        ("middleware_on", "django_on", "recording: fast path middleware / through Django"),
    ]
    return [
        f"{level} Warm tiles in-process, CPU time per request",
        "",
        *where_the_time_goes(rows),
        "",
        f"Each application called directly with a prepared WSGI environ, in a process of its "
        f"own; {rounds} rounds of alternating blocks; CPU time from `time.process_time` (all "
        "threads, so the recorder's writer is counted); ratios are of requests per CPU "
        "second, paired within a round.",
        "",
        *_table(["application", "CPU µs per request", "× bare"], table),
        "",
        *_table(
            ["paired ratio", "requests per CPU second"],
            [
                [label, cpu_ratio(rows, a, b).format()]
                for a, b, label in pairs
                if a in names and b in names
            ],
        ),
    ] + (
        [
            "",
            *targets_table(in_process_targets(rows)),
        ]
        if with_targets
        else []
    )


def run_record(results: Results) -> dict[str, Any]:
    """What the next run compares with: when, which code, and the judged ratios."""
    checks = targets(results)
    return {
        "date": results.environment["date"],
        "commit": results.environment.get("commit", ""),
        "met": all(t.met for t in checks),
        "ratios": {t.text: t.ratio for t in checks if t.ratio is not None},
    }


def markdown(results: Results) -> str:
    """One run's section: its targets, every figure and its raw rows."""
    env, params = results.environment, results.parameters
    checks = targets(results)
    met = all(t.met for t in checks)
    out = [
        RUN_MARK + json.dumps(run_record(results), ensure_ascii=False) + " -->",
        f"## Run of {env['date']}: targets {'all met' if met else 'NOT ALL MET'}",
        "",
        f"- Date: {env['date']}; run took {results.seconds:.0f} s",
        f"- Machine: {env['machine']}",
        f"- Software: {env['software']}",
        f"- Load generator: {env['load']}",
        f"- Servers: gunicorn, {params['workers']} sync workers each, the same TileStache "
        f"config (the example project's `demo` layer, Pillow-drawn PNGs, a Disk cache)",
        f"- Rounds: {params['rounds']} warm × {params['seconds']} s of the judged servers "
        f"(bare, `ENABLED: False`, recording), then {params.get('context_rounds', 0)} × "
        f"{params.get('context_seconds', 0)} s of bare beside the others; "
        f"{params['cold_rounds']} cold × {params['cold_seconds']} s per server; "
        f"{params.get('alternation_rounds', 0)} × {params.get('alternation_seconds', 0)} s of "
        "the judged servers in plain alternation (the cross-check); in-process "
        f"{params['in_process_rounds']} rounds of {params['in_process_requests']} requests per "
        f"application; status reads {params['read_repeats']} alternating pairs per case",
        "",
        "### Targets",
        "",
        *targets_table(checks),
        "",
        "### Warm tiles (cached), throughput",
        "",
    ]
    out += _throughput_table(results.warm, ("bare", "original", "floor", "django", "off", "on"))
    pairs = [
        ("on", "off", "recording / `ENABLED: False`"),
        ("on", "bare", "recording / bare TileStache"),
        ("django", "floor", "through Django / plain Django floor"),
    ]
    out += [
        "",
        *_table(
            ["paired ratio", "throughput", "requests per CPU second"],
            [
                [
                    label,
                    ratio(results.warm, a, b).format(),
                    ratio(results.warm, a, b, "per_cpu").format(),
                ]
                for a, b, label in pairs
            ],
        ),
        "",
    ]
    if results.alternation:
        out += [*alternation_markdown(results.alternation), ""]
    out += [
        "### Cold tiles (each request renders and saves a new tile), throughput",
        "",
    ]
    out += _throughput_table(results.cold, ("bare", "on"))
    out += [
        "",
        "### Cold Mapnik tiles (the example's `world` layer, 4 × 4 metatiles), throughput",
        "",
    ]
    if results.mapnik:
        out += [
            "Each run asks for new zoom-10 tiles along one row: one Mapnik render of a 4 × 4 "
            "metatile for every four requests, the others waiting for it on the cache lock.",
            "",
            *_throughput_table(results.mapnik, ("bare", "on")),
        ]
    else:
        out += ["Not measured: Mapnik is not installed (the `mapnik` extra)."]
    out += ["", *in_process_markdown(results.in_process, with_targets=False, level="###")]
    out += ["", "### Redis per request (INFO deltas over a sequential pass)", ""]
    rows = []
    for usage in results.usage:
        rows.append(
            [
                LABELS[usage.server],
                usage.kind,
                str(usage.requests),
                f"{usage.per_request(usage.connections):.2f}",
                f"{usage.per_request(usage.commands):.2f}",
                f"{usage.round_trips / usage.events:.3f}" if usage.events else "–",
            ]
        )
    out += _table(
        [
            "server",
            "tiles",
            "requests",
            "new connections / request",
            "commands / request",
            "round trips / event",
        ],
        rows,
    )
    delays = results.visibility
    out += [
        "",
        f"Events visible in Redis after the response: median {statistics.median(delays) * 1000:.0f}"
        f" ms, at most {max(delays) * 1000:.0f} ms ({len(delays)} requests).",
        "",
        f"Redis memory per recorded process at KEEP=20: {results.memory_per_process:,.0f} bytes "
        "(`used_memory` delta over 1000 processes of 20 typical messages).",
        "",
        *statistics_memory_lines(results.statistics_memory),
        "### Reading the status log",
        "",
        "Milliseconds per read (each timing the fastest of 5 reads in a row, 10 for 10 and 100 "
        "processes; the original's, one read), median "
        "[min–max], with no other keys in the database and with 1,000,000 unrelated keys; "
        "the last column is the paired ratio of the two.",
        "",
    ]
    rows = []
    for reader in ("get_recent", "status page", "original get_recent"):
        for processes in PROCESS_COUNTS:
            rows.append(
                [
                    reader,
                    str(processes),
                    read_spread(results.reads, reader, processes, 0).format(2, 1000),
                    read_spread(results.reads, reader, processes, UNRELATED).format(2, 1000),
                    read_ratio(results.reads, reader, processes).format(),
                ]
            )
    out += _table(
        ["reader", "processes", "ms, no other keys", "ms, 1,000,000 other keys", "ratio"], rows
    )
    out += [
        "",
        f"The status page over {PROCESSES:,} processes of 20 messages each, all seen within "
        "TTL (fastest of 3 reads; memory: the peak of Python's allocations during one read):",
        "",
        *_table(
            ["format", "ms", "bytes", "peak memory (MB)"],
            [
                [
                    row.format,
                    f"{row.seconds * 1000:.0f}",
                    f"{row.bytes:,}",
                    f"{row.peak_bytes / 2**20:.1f}",
                ]
                for row in results.scale
            ],
        ),
    ]
    if results.locks is not None:
        out += ["", *lock_markdown(results.locks)]
    out += [
        "",
        "### Raw rows",
        "",
        "Throughput runs:",
        "",
        "```",
        "figure round server requests seconds errors cpu_seconds req/s req/cpu_s",
    ]
    out += [
        f"{r.figure} {r.round} {r.server} {r.requests} {r.seconds:.3f} {r.errors} "
        f"{r.cpu:.2f} {r.rate:.1f} {r.per_cpu:.1f}"
        for r in results.warm + results.alternation + results.cold + results.mapnik
    ]
    out += [
        "```",
        "",
        "In-process blocks:",
        "",
        "```",
        "round variant requests cpu_seconds cpu_us_per_request",
    ]
    out += [
        f"{r.round} {r.variant} {r.requests} {r.cpu:.6f} {r.micros:.1f}" for r in results.in_process
    ]
    out += [
        "```",
        "",
        "Redis passes:",
        "",
        "```",
        "server tiles requests events connections commands round_trips",
    ]
    out += [
        f"{u.server} {u.kind} {u.requests} {u.events} {u.connections} {u.commands} {u.round_trips}"
        for u in results.usage
    ]
    out += [
        "```",
        "",
        "Visibility delays (ms):",
        "",
        "```",
        " ".join(f"{d * 1000:.1f}" for d in delays),
        "```",
        "",
        "Status reads (ms):",
        "",
        "```",
        "reader repeat processes unrelated ms",
    ]
    out += [
        f"{r.reader.replace(' ', '_')} {r.repeat} {r.processes} {r.unrelated} "
        f"{r.seconds * 1000:.3f}"
        for r in results.reads
    ]
    out += ["```", ""]
    return "\n".join(out)


def statistics_memory_lines(memory: Any) -> list[str]:
    """The tile statistics' Redis memory at their bound (``redis_usage.statistics_memory``)."""
    if memory is None:
        return []
    return [
        f"Redis memory of the tile statistics for a day of traffic on {memory.layers} layers "
        f"(zooms 0-{memory.zooms - 1}, every outcome in every bucket every minute: the bound): "
        f"{memory.total_bytes / 2**20:,.1f} MiB (`MEMORY USAGE` of every key: the cumulative hash "
        f"of {memory.fields:,} fields, {memory.cumulative_bytes:,} bytes, and 61 minutes of "
        f"{memory.minute_bytes:,} bytes each).",
        "",
    ]


# -- RESULTS.md: this run and the one before it -------------------------------


def newest_run(document: str) -> tuple[str, dict[str, Any]] | None:
    """The newest run's section of a ``RESULTS.md`` and its record, if it has one."""
    starts = [m.start() for m in re.finditer("^" + re.escape(RUN_MARK), document, re.M)]
    if not starts:
        return None
    end = starts[1] if len(starts) > 1 else len(document)
    section = document[starts[0] : end].rstrip() + "\n"
    first_line = section.split("\n", 1)[0]
    try:
        record = json.loads(first_line[len(RUN_MARK) : -len(" -->")])
    except ValueError:
        return None
    return (section, record) if isinstance(record, dict) else None


#: After the commit in a run's code version when the working tree held changes.
MODIFIED = " (modified)"


def code_version(commit: str, modified: bool) -> str:
    """The code a run measured, as ``RESULTS.md`` names it."""
    return f"{commit or 'unknown'}{MODIFIED if modified else ''}"


def measured_code(root: Path) -> str:
    """The code version of the work tree at ``root`` (its commit, ``(modified)`` when it
    holds changes; the results file a run writes is no change to the code)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root
    ).stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!benchmarks/RESULTS.md",
        ],
        capture_output=True,
        text=True,
        cwd=root,
    ).stdout.strip()
    return code_version(commit, bool(dirty))


def same_code(results: Results, previous: dict[str, Any] | None) -> bool:
    """Whether the previous run measured this very code (a commit, unmodified): only then
    does a change between the two say how steady the figures are."""
    commit = results.environment.get("commit", "")
    return (
        previous is not None
        and bool(commit)
        and not commit.endswith(MODIFIED)
        and previous.get("commit") == commit
    )


def steadiness(results: Results, previous: dict[str, Any] | None) -> list[Target]:
    """Each judged ratio against the previous run's of the same code: within ``STEADY``."""
    if previous is None or not same_code(results, previous):
        return []
    before = previous.get("ratios", {})
    found = []
    for target in targets(results):
        old = before.get(target.text)
        if target.ratio is None or not isinstance(old, (int, float)) or not old:
            continue
        change = target.ratio / old - 1
        found.append(
            Target(
                target.text,
                f"{target.ratio:.3f} now, {old:.3f} before: {change:+.1%}",
                abs(change) <= STEADY,
            )
        )
    return found


def seeding_section(document: str) -> str | None:
    """The seeding benchmark's section of a ``RESULTS.md``, marks included, if any."""
    start = document.find(SEEDING_START)
    end = document.find(SEEDING_END, start)
    if start < 0 or end < 0:
        return None
    return document[start : end + len(SEEDING_END)]


def with_seeding_section(document: str, section: str) -> str:
    """``document`` with its seeding section replaced by ``section`` (marks included), or
    ``section`` put before the first run's section."""
    old = seeding_section(document)
    if old is not None:
        return document.replace(old, section.strip())
    at = document.find(RUN_MARK)
    if at < 0:
        return document.rstrip() + "\n\n" + section.strip() + "\n"
    return document[:at] + section.strip() + "\n\n" + document[at:]


def document(
    results: Results,
    previous: tuple[str, dict[str, Any]] | None,
    seeding: str | None = None,
) -> str:
    """``RESULTS.md``: both runs' targets, the judged ratios' steadiness, the seeding
    benchmark's section (carried over), then each run."""
    record = previous[1] if previous else None
    steady = steadiness(results, record)
    this_met = all(t.met for t in targets(results))
    out = [
        "# Benchmark results",
        "",
        "Written by `./benchmarks/run.sh` (`python -m benchmarks`; see docs/performance.md): "
        "the newest run and the one before it, each with its raw rows. Every ratio is the "
        "median [min–max] of ratios paired within one round of alternating runs; a target "
        f"is judged on its median, which must also stay within ±{STEADY:.0%} of the previous "
        "run's.",
        "",
        "| run | date | code | every target met |",
        "|---|---|---|---|",
        f"| this run | {results.environment['date']} | {results.environment.get('commit', '')} "
        f"| {'yes' if this_met else '**no**'} |",
    ]
    if record is not None:
        out.append(
            f"| previous run | {record.get('date', '?')} | {record.get('commit', '?')} "
            f"| {'yes' if record.get('met') else '**no**'} |"
        )
    out += ["", f"## Judged ratios, this run against the previous (within ±{STEADY:.0%})", ""]
    if steady:
        out += _table(
            ["target", "medians", "steady"],
            [[t.text, t.measured, t.verdict] for t in steady],
        )
    elif record is not None:
        out.append(
            f"The previous run measured other code ({record.get('commit', '?')}): steadiness "
            "is judged between two runs of the same code. Run the benchmark again."
        )
    else:
        out.append("No previous run to compare with: run the benchmark again.")
    if seeding is not None:
        out += ["", seeding.strip()]
    out += ["", markdown(results).rstrip()]
    if previous is not None:
        out += ["", previous[0].rstrip()]
    return "\n".join(out) + "\n"
