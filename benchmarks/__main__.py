"""Run every benchmark, print the results and write ``benchmarks/RESULTS.md``.

    .venv/bin/python -m benchmarks [--quick] [--output PATH]
    .venv/bin/python -m benchmarks --in-process-only   # under a minute; prints only
    .venv/bin/python -m benchmarks --alternation-only  # about 4 minutes; prints only

Needs no network: it starts its own redis-server on a free loopback port
(or uses ``TILESTATUS_BENCH_REDIS_URL``) and the servers under gunicorn on
loopback, and stops them all when it ends.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import redis

from tests.support.http import request

from . import config, in_process, metatile_locks, throughput
from .load import WARM_GRID, generator_name, warm_path
from .redis_server import DATABASES, URL_ENV, db_url, redis_server
from .report import (
    Results,
    alternation_markdown,
    cross_checks,
    document,
    lock_targets,
    measured_code,
    newest_run,
    seeding_section,
    steadiness,
    targets,
    targets_table,
)
from .servers import WORKERS, Server

#: Key prefix the instrumented server records under.
PREFIX = "bench"


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def make_servers() -> list[Server]:
    django_app = "example_project.wsgi:application"
    return [
        Server("bare", "bare", "benchmarks.apps.bare:application", ""),
        Server("original", "original", "benchmarks.apps.original:application", ""),
        Server(
            "floor",
            "floor",
            django_app,
            "/tiles",
            {
                "DJANGO_SETTINGS_MODULE": "benchmarks.apps.floor_settings",
                "TILESTATUS_FAST_PATH": "0",
            },
        ),
        Server(
            "django",
            "django",
            django_app,
            "/tiles",
            {
                "DJANGO_SETTINGS_MODULE": "benchmarks.apps.settings",
                "TILESTATUS_ENABLED": "1",
                "TILESTATUS_FAST_PATH": "0",
            },
        ),
        Server(
            "off",
            "off",
            django_app,
            "/tiles",
            {"DJANGO_SETTINGS_MODULE": "benchmarks.apps.settings", "TILESTATUS_ENABLED": "0"},
        ),
        Server(
            "on",
            "on",
            django_app,
            "/tiles",
            {"DJANGO_SETTINGS_MODULE": "benchmarks.apps.settings", "TILESTATUS_ENABLED": "1"},
        ),
    ]


def environment(url: str) -> dict[str, str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    client = redis.Redis.from_url(url)
    redis_version = client.info("server")["redis_version"]
    client.close()
    code = measured_code(config.ROOT)
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("Django", "redis", "django-redis", "TileStache", "gunicorn", "Pillow")
    )
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": code,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({cpu}){memory}, "
        f"{platform.system()} {platform.release()}",
        "software": f"django_tilestatus at {code}"
        f"; Python {platform.python_version()}; Redis server {redis_version}; "
        f"{packages}",
        "load": generator_name(),
    }


def warm_the_cache(server: Server) -> None:
    """Render every warm tile once, so the timed runs read them from the Disk cache."""
    paths = [warm_path(server.prefix, i) for i in range(WARM_GRID * WARM_GRID)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for answer in pool.map(lambda p: request(server.base, p, timeout=30), paths):
            if not answer.ok:
                raise SystemExit(
                    f"warming the cache: {server.name} answered {answer.status} {answer.error}"
                )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rounds", type=int, default=30, help="judged warm rounds: off, on, bare (default 30)"
    )
    parser.add_argument("--seconds", type=int, default=2, help="seconds per warm run (default 2)")
    parser.add_argument(
        "--context-rounds",
        type=int,
        default=10,
        help="warm rounds of bare beside Django and the original pattern (default 10)",
    )
    parser.add_argument(
        "--context-seconds", type=int, default=1, help="seconds per such run (default 1)"
    )
    parser.add_argument("--cold-rounds", type=int, default=30, help="cold rounds (default 30)")
    parser.add_argument(
        "--cold-seconds", type=int, default=2, help="seconds per cold run (default 2)"
    )
    parser.add_argument(
        "--read-repeats",
        type=int,
        default=12,
        help="alternating pairs per status-read case (default 12)",
    )
    parser.add_argument(
        "--in-process-rounds",
        type=int,
        default=in_process.ROUNDS,
        help=f"in-process rounds (default {in_process.ROUNDS})",
    )
    parser.add_argument(
        "--lock-rounds",
        type=int,
        default=10,
        help="metatile lock burst rounds (default 10)",
    )
    parser.add_argument(
        "--locks-only",
        action="store_true",
        help="only the metatile lock scenarios (about a minute); results go to stdout only",
    )
    parser.add_argument(
        "--alternation-rounds",
        type=int,
        default=throughput.ALTERNATION_ROUNDS,
        help="rounds of the cross-check's long warm runs (default "
        f"{throughput.ALTERNATION_ROUNDS})",
    )
    parser.add_argument(
        "--alternation-seconds",
        type=int,
        default=throughput.ALTERNATION_SECONDS,
        help=f"seconds per cross-check run (default {throughput.ALTERNATION_SECONDS})",
    )
    parser.add_argument(
        "--alternation-only",
        action="store_true",
        help="only the cross-check: long warm runs of bare, `ENABLED: False` and recording "
        "in plain alternation (about 4 minutes); results go to stdout only",
    )
    parser.add_argument(
        "--in-process-only",
        action="store_true",
        help="only the in-process CPU figure (under a minute); results go to stdout only",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run (2 rounds); results go to stdout only",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the results (default benchmarks/RESULTS.md)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = args.cold_rounds = args.context_rounds = args.alternation_rounds = 2
        args.alternation_seconds = 1
        args.read_repeats = 4
        args.in_process_rounds = 4
        args.lock_rounds = 2
    elif args.output is None and not (
        args.in_process_only or args.locks_only or args.alternation_only
    ):
        args.output = config.BENCH_DIR / "RESULTS.md"
    return args


def locks_only(rounds: int) -> int:
    """The metatile lock scenarios alone, printed and judged."""
    with redis_server() as url:
        locks = metatile_locks.measure(url, rounds, progress)
    print("\n".join(metatile_locks.summary(locks)))
    checks = lock_targets(locks)
    print("\n".join(f"{'met' if t.met else 'NOT MET'}: {t.text}: {t.measured}" for t in checks))
    return 0 if all(t.met for t in checks) else 1


def alternation_only(args: argparse.Namespace) -> int:
    """Run the cross-check alone: its servers, its rounds, its section; judges nothing."""
    started = time.monotonic()
    config.VAR_DIR.mkdir(parents=True, exist_ok=True)
    config_file = config.write_config()
    os.environ[config.CONFIG_ENV] = str(config_file)
    with redis_server() as url:
        servers = [s for s in make_servers() if s.name in ("bare", "off", "on")]
        base_env = {
            config.CONFIG_ENV: str(config_file),
            "TILESTATUS_REDIS_URL": url,
            "TILESTATUS_KEY_PREFIX": PREFIX,
            "DJANGO_DEBUG": "0",
        }
        log = config.VAR_DIR / "servers.log"
        log.unlink(missing_ok=True)
        try:
            for server in servers:
                server.start(base_env, log, warm_path(server.prefix, 0))
            for server in servers:
                server.wait_ready()
            warm_the_cache(servers[0])
            progress(f"servers up, warm tiles cached; load generator: {generator_name()}")
            by_name = {s.name: s for s in servers}
            rows = throughput.alternation_rounds(
                [by_name[n] for n in ("off", "on", "bare")],
                args.alternation_rounds,
                args.alternation_seconds,
                progress,
            )
        finally:
            for server in servers:
                server.stop()
    checks = cross_checks(rows)
    print("\n".join(alternation_markdown(rows, level="##")))
    print()
    print("\n".join(targets_table(checks)))
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0


def throughput_passes(
    results: Results,
    by_name: dict[str, Server],
    args: argparse.Namespace,
    config_file: Path,
    first_row: int,
) -> None:
    """The throughput figures: warm (judged, cross-check, context), cold, cold Mapnik."""
    # The judged pass: only the servers the targets compare, so recording runs next
    # to recording off and to bare, in longer runs; the order reverses every round.
    judged = [by_name[n] for n in ("off", "on", "bare")]
    results.warm = throughput.warm_rounds(judged, args.rounds, args.seconds, progress)
    # The cross-check: the same servers in a few long runs each.
    results.alternation = throughput.alternation_rounds(
        judged, args.alternation_rounds, args.alternation_seconds, progress
    )
    # Context, each beside bare in rounds of its own: Django and the old pattern.
    context = [by_name[n] for n in ("bare", "django", "floor", "original")]
    results.warm += throughput.warm_rounds(
        context,
        args.context_rounds,
        args.context_seconds,
        progress,
        first=throughput.CONTEXT_FIRST_ROUND,
    )
    results.cold = throughput.cold_rounds(
        [by_name["bare"], by_name["on"]],
        args.cold_rounds,
        args.cold_seconds,
        first_row + 20,
        progress,
    )
    if config.has_mapnik_layer(config_file):
        results.mapnik = throughput.mapnik_rounds(
            [by_name["bare"], by_name["on"]], args.cold_rounds, args.cold_seconds, progress
        )
    else:
        progress("Mapnik is not installed: no cold Mapnik tiles")


def one_part(args: argparse.Namespace) -> int | None:
    """Run the one part an ``--…-only`` option asks for (its exit status), or None."""
    if args.in_process_only:
        return in_process.main(["--rounds", str(args.in_process_rounds)])
    if args.locks_only:
        return locks_only(args.lock_rounds)
    if args.alternation_only:
        return alternation_only(args)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    alone = one_part(args)
    if alone is not None:
        return alone
    started = time.monotonic()
    shutil.rmtree(config.VAR_DIR / "tiles", ignore_errors=True)
    config.VAR_DIR.mkdir(parents=True, exist_ok=True)
    config_file = config.write_config()
    os.environ[config.CONFIG_ENV] = str(config_file)

    with redis_server() as url:
        for db in range(DATABASES):
            redis.Redis.from_url(db_url(url, db)).flushdb()
        # The harness's own Django: the status page is timed in-process.
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "benchmarks.apps.harness_settings",
                "TILESTATUS_REDIS_URL": url,
                "DJANGO_DEBUG": "0",
            }
        )
        import django

        django.setup()
        from django_tilestatus.storage import RedisStore

        from . import redis_usage, status_reads, status_scale

        results = Results(
            environment(url),
            {
                "workers": WORKERS,
                "rounds": args.rounds,
                "seconds": args.seconds,
                "context_rounds": args.context_rounds,
                "context_seconds": args.context_seconds,
                "cold_rounds": args.cold_rounds,
                "cold_seconds": args.cold_seconds,
                "read_repeats": args.read_repeats,
                "alternation_rounds": args.alternation_rounds,
                "alternation_seconds": args.alternation_seconds,
                "in_process_rounds": args.in_process_rounds,
                "in_process_requests": in_process.REQUESTS,
                "lock_rounds": args.lock_rounds,
            },
        )
        progress(f"Redis at {url}; load generator: {results.environment['load']}")
        memory_client = redis.Redis.from_url(db_url(url, 13))
        results.memory_per_process = redis_usage.memory_per_process(memory_client)
        results.statistics_memory = redis_usage.statistics_memory(memory_client)
        memory_client.close()

        servers = make_servers()
        base_env = {
            config.CONFIG_ENV: str(config_file),
            "TILESTATUS_REDIS_URL": url,
            "TILESTATUS_KEY_PREFIX": PREFIX,
            "DJANGO_DEBUG": "0",
            "TILESTATUS_BENCH_ORIGINAL_REDIS_URL": url,
        }
        log = config.VAR_DIR / "servers.log"
        log.unlink(missing_ok=True)
        try:
            for server in servers:
                server.start(base_env, log, warm_path(server.prefix, 0))
            for server in servers:
                server.wait_ready()
            warm_the_cache(servers[0])
            progress("servers up, warm tiles cached")

            by_name = {s.name: s for s in servers}
            client = redis.Redis.from_url(url)
            first_row = int(time.time()) % 500_000
            passes = [
                ("on", "warm", 300, 2, True),
                ("original", "warm", 300, 2, False),
                ("off", "warm", 300, 0, True),
                ("on", "cold", 60, 4, True),
                ("original", "cold", 60, 4, False),
            ]
            for row, (name, kind, count, events, pipelined) in enumerate(passes, first_row):
                results.usage.append(
                    redis_usage.measure_pass(
                        client, by_name[name], kind, count, row, events, pipelined
                    )
                )
            progress("Redis connections and commands counted")
            store = RedisStore(client, PREFIX, keep=20, ttl=3600)
            results.visibility = redis_usage.visibility(store, by_name["on"], first_row + 10, 20)
            client.close()

            throughput_passes(results, by_name, args, config_file, first_row)
        finally:
            for server in servers:
                server.stop()

        results.in_process = in_process.measure(
            url, config_file, args.in_process_rounds, progress=progress
        )
        status_reads.populate(url, progress)
        results.reads = status_reads.time_reads(url, args.read_repeats, progress)
        status_scale.populate(url, progress)
        results.scale = status_scale.measure(url, progress)
        results.locks = metatile_locks.measure(url, args.lock_rounds, progress)
        if os.environ.get(URL_ENV):  # a server of the caller's: leave nothing behind
            for db in range(DATABASES):
                redis.Redis.from_url(db_url(url, db)).flushdb(asynchronous=True)

    results.seconds = time.monotonic() - started
    previous = seeding = None
    if args.output is not None and args.output.exists():
        earlier = args.output.read_text("utf-8")
        previous, seeding = newest_run(earlier), seeding_section(earlier)
    text = document(results, previous, seeding)
    print(text)
    if args.output is not None:
        args.output.write_text(text, "utf-8")
        progress(f"written to {args.output}")
    checks = targets(results) + steadiness(results, previous[1] if previous else None)
    return 0 if all(t.met for t in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
