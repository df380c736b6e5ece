"""Seeding throughput and memory: ``tilestatus_seed`` beside TileStache's ``tilestache-seed``.

    .venv/bin/python -m benchmarks.seeding [--rounds N] [--zooms A-B] [--cpu-ms MS]
                                           [--results benchmarks/RESULTS.md]

- **throughput**: the whole command timed (start-up included), on a fresh Disk cache
  each run, for a layer whose provider burns ``--cpu-ms`` of CPU per tile
  (``tests.providers:Counting`` with ``cpu``): ``tilestatus_seed --processes 2``,
  ``--processes 1``, and TileStache's own ``tilestache-seed`` script (its loop of
  ``TileStache.getTile`` per tile, in one process) run through the app's compatibility
  shim (``django_tilestatus.tilestache.import_tilestache``), on the same layer and zooms.
  The CPU time of each command (its processes included, from ``os.wait4``) is printed
  per tile too: a load-independent view of the per-tile overhead.
- **memory**: the peak RSS (``ru_maxrss`` of the child, from ``os.wait4``) of
  ``tilestatus_seed --dry-run`` for a plan of 16,384 tiles (zoom 7) and of 1,048,576
  tiles (zoom 10).

The runs of a round rotate (each round starts one further along), and every ratio is
the median [min–max] of the ratios paired within a round. With ``--results`` the figures
become the seeding section of ``RESULTS.md``, which runs of ``python -m benchmarks``
carry over. The app records into Redis (``TILESTATUS_BENCH_REDIS_URL``,
default db 15 of the local Redis, under a private prefix deleted afterwards). Figures
depend on the machine's load: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TILESTATUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
MEMORY_PLANS = {"1e4 (z7)": "7", "1e6 (z10)": "10"}

#: ``tilestache-seed.py`` as installed with TileStache (a script beside the interpreter),
#: run as ``__main__`` once the shim has made TileStache importable on Python 3.
TILESTACHE_SEED = """
import runpy, sys
from django_tilestatus.tilestache import import_tilestache
import_tilestache()
script = sys.argv[1]
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
"""


def tilestache_seed_script() -> Path:
    path = Path(sys.executable).parent / "tilestache-seed.py"
    if not path.exists():
        sys.exit(f"no {path}: TileStache installs it beside the interpreter")
    return path


def zoom_list(zooms: str) -> list[int]:
    first, _, last = zooms.partition("-")
    return list(range(int(first), int(last or first) + 1))


def tiles_of(zooms: str) -> int:
    return sum(4**z for z in zoom_list(zooms))


class Bench:
    def __init__(self, directory: Path, cpu_ms: float) -> None:
        self.directory = directory
        self.cpu_ms = cpu_ms
        self.prefix = f"bench-seed-{uuid.uuid4().hex[:8]}"
        self.runs = 0
        self.cpu = 0.0

    def config(self, provider: dict[str, Any]) -> Path:
        """A config with one layer on a Disk cache of its own (a cold cache per run)."""
        self.runs += 1
        run = self.directory / f"run{self.runs}"
        run.mkdir()
        config = {
            "cache": {"name": "Disk", "path": str(run / "tiles"), "umask": "0022"},
            "layers": {"bench": {"provider": provider}},
        }
        path = run / "tilestache.cfg"
        path.write_text(json.dumps(config))
        return path

    def cpu_layer(self) -> Path:
        kwargs = {"seconds": self.cpu_ms / 1000, "cpu": True}
        return self.config({"class": "tests.providers:Counting", "kwargs": kwargs})

    def env(self, config: Path) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_SQLITE_PATH": str(self.directory / "db.sqlite3"),
            "TILESTATUS_CONFIG": str(config),
            "TILESTATUS_REDIS_URL": REDIS_URL,
            "TILESTATUS_KEY_PREFIX": self.prefix,
        }

    def run(self, args: list[str], config: Path) -> tuple[float, int]:
        """Seconds the command took and its child's peak RSS in kB; fails if it fails.
        The CPU seconds of the command and its processes are added to ``self.cpu``."""
        log = self.directory / f"run{self.runs}.log"
        with log.open("w") as out:
            started = time.perf_counter()
            child = subprocess.Popen(
                args, cwd=ROOT, env=self.env(config), stdout=out, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - started
            child.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = usage.ru_utime + usage.ru_stime
        if child.returncode != 0:
            sys.exit(f"{args} exited {child.returncode}:\n{log.read_text()[-2000:]}")
        return seconds, int(usage.ru_maxrss)

    def app_seed(self, zooms: str, processes: int) -> float:
        config = self.cpu_layer()
        manage = [sys.executable, "example_project/manage.py", "tilestatus_seed", "bench"]
        args = [*manage, "--zooms", zooms, "--processes", str(processes), "--yes"]
        seconds, _ = self.run(args, config)
        written = sum(1 for _ in (config.parent / "tiles").rglob("*.png"))
        assert written == tiles_of(zooms), (written, tiles_of(zooms))
        return seconds

    def tilestache_seed(self, zooms: str) -> float:
        config = self.cpu_layer()
        bbox = ["-85.0511", "-179.999", "85.0511", "179.999"]  # the world, lat/lon
        args = [sys.executable, "-c", TILESTACHE_SEED, str(tilestache_seed_script())]
        args += ["-q", "-c", str(config), "-l", "bench", "-b", *bbox]
        args += [str(z) for z in zoom_list(zooms)]
        seconds, _ = self.run(args, config)
        written = sum(1 for _ in (config.parent / "tiles").rglob("*.png"))
        assert written == tiles_of(zooms), (written, tiles_of(zooms))
        return seconds

    def dry_run_rss(self, zooms: str) -> int:
        config = self.config({"class": "tests.providers:Solid"})
        manage = [sys.executable, "example_project/manage.py", "tilestatus_seed", "bench"]
        args = [*manage, "--zooms", zooms, "--dry-run", "--yes"]
        _, rss = self.run(args, config)
        return rss

    def clean_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
                client.delete(key)
        finally:
            client.close()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


#: The throughput runs of a round, in the first round's order; each round starts one
#: further along, so no command always runs first (on a cold page cache) or last.
RUNS = ["p2", "p1", "tilestache"]

#: figure, its median's lower bound (or None), upper bound (or None).
TARGETS = {
    "throughput, --processes 2 × --processes 1": (1.8, None),
    "throughput, --processes 2 × tilestache-seed": (1.5, None),
    "throughput, --processes 1 × tilestache-seed": (None, None),
    "peak RSS of --dry-run, 10^6 × 10^4 tiles": (0.90, 1.10),
}


def target_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:.2f}–{high:.2f}"
    return f"≥ {low}" if low is not None else "–"


def met(values: list[float], low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "–"
    median = statistics.median(values)
    ok = (low is None or median >= low) and (high is None or median <= high)
    return "yes" if ok else "**no**"


class Measured:
    """Every run's seconds, CPU seconds and peak RSS, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {name: [] for name in RUNS}
        self.cpu: dict[str, list[float]] = {name: [] for name in RUNS}
        self.rss: dict[str, list[int]] = {name: [] for name in MEMORY_PLANS}

    def round(self, bench: Bench, zooms: str, number: int) -> str:
        order = RUNS[number % len(RUNS) :] + RUNS[: number % len(RUNS)]
        for name in order:
            if name == "tilestache":
                seconds = bench.tilestache_seed(zooms)
            else:
                seconds = bench.app_seed(zooms, int(name[1:]))
            self.seconds[name].append(seconds)
            self.cpu[name].append(bench.cpu)
        for name, plan_zooms in MEMORY_PLANS.items():
            self.rss[name].append(bench.dry_run_rss(plan_zooms))
        tiles = tiles_of(zooms)
        return (
            ", ".join(f"{n} {tiles / self.seconds[n][-1]:.0f} tiles/s" for n in order)
            + "; dry-run peak RSS "
            + ", ".join(f"{n} {self.rss[n][-1] / 1024:.1f} MiB" for n in self.rss)
        )

    def figures(self) -> dict[str, list[float]]:
        """Each figure's ratios, paired within a round."""
        pairs = list(zip(*(self.seconds[n] for n in RUNS), strict=True))
        small, big = (self.rss[n] for n in MEMORY_PLANS)
        return dict(
            zip(
                TARGETS,
                [
                    [p1 / p2 for p2, p1, _ in pairs],
                    [ts / p2 for p2, _, ts in pairs],
                    [ts / p1 for _, p1, ts in pairs],
                    [b / s for s, b in zip(small, big, strict=True)],
                ],
                strict=True,
            )
        )

    def table(self, tiles: int) -> list[str]:
        lines = ["| figure | median [min–max] | target | met |", "|---|---|---|---|"]
        for name, values in self.figures().items():
            low, high = TARGETS[name]
            lines.append(
                f"| {name} | {spread(values)} | {target_text(low, high)} "
                f"| {met(values, low, high)} |"
            )
        lines.append("")
        for name in MEMORY_PLANS:
            lines.append(
                f"- peak RSS of the dry run, {name}: "
                f"{statistics.median(self.rss[name]) / 1024:.1f} MiB"
            )
        for name in RUNS:
            per_tile = 1000 * statistics.median(self.cpu[name]) / tiles
            lines.append(
                f"- {name}: median {tiles / statistics.median(self.seconds[name]):.0f} tiles/s,"
                f" {per_tile:.2f} ms of CPU per tile (start-up included)"
            )
        return lines


def section(measured: Measured, options: argparse.Namespace, loads: tuple[str, str]) -> str:
    """The seeding section of ``RESULTS.md``."""
    from .report import SEEDING_END, SEEDING_START, measured_code

    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tiles = tiles_of(options.zooms)
    lines = [
        SEEDING_START,
        "## Seeding",
        "",
        f"Written by `python -m benchmarks.seeding --results` (a run of its own, carried over "
        f"by `python -m benchmarks`): {date}, code {measured_code(ROOT)}, "
        f"{options.rounds} rounds of "
        f"{tiles:,} tiles (zooms {options.zooms}) at {options.cpu_ms:g} ms of CPU each, "
        f"{os.cpu_count()} CPUs, load average {loads[0]} before and {loads[1]} after. "
        "Whole commands timed, start-up included; ratios paired within a round.",
        "",
        *measured.table(tiles),
        SEEDING_END,
    ]
    return "\n".join(lines)


def measure(options: argparse.Namespace) -> Measured:
    measured = Measured()
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as tmp:
        bench = Bench(Path(tmp), options.cpu_ms)
        subprocess.run(
            [sys.executable, "example_project/manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=bench.env(bench.config({"class": "tests.providers:Solid"})),
            check=True,
        )
        try:
            for number in range(options.rounds):
                print(f"round {number + 1}: {measured.round(bench, options.zooms, number)}")
        finally:
            bench.clean_redis()
            shutil.rmtree(tmp, ignore_errors=True)
    return measured


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--zooms", default="0-6", help="the throughput runs' zooms")
    parser.add_argument("--cpu-ms", type=float, default=5.0, help="CPU per tile, ms")
    parser.add_argument(
        "--results",
        type=Path,
        help="write the figures as the seeding section of this RESULTS.md (kept by "
        "later runs of python -m benchmarks)",
    )
    options = parser.parse_args(argv)
    before = load()
    print(f"load average before: {before}; {os.cpu_count()} CPUs", flush=True)
    print(
        f"throughput: {tiles_of(options.zooms)} tiles (zooms {options.zooms}), "
        f"{options.cpu_ms} ms CPU each",
        flush=True,
    )
    measured = measure(options)
    after = load()
    print()
    print("\n".join(measured.table(tiles_of(options.zooms))))
    print(f"load average after: {after}")
    if options.results is not None:
        from .report import with_seeding_section

        document = options.results.read_text("utf-8") if options.results.exists() else ""
        text = with_seeding_section(document, section(measured, options, (before, after)))
        options.results.write_text(text, "utf-8")
        print(f"written to {options.results}")


if __name__ == "__main__":
    main()
