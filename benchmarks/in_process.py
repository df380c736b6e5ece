"""CPU time per warm tile in-process: each WSGI application called directly.

    .venv/bin/python -m benchmarks.in_process [--rounds N] [--requests N]

Each compared application runs in a process of its own (its own settings, as
under gunicorn) that calls it with a prepared WSGI environ, consumes the body
and closes the answer as a server would. The parent alternates short blocks of
requests between them, in an order that reverses every round, and each process
reports the CPU time (``time.process_time``: every thread) it used for a block.
A recording process ends each block with its writer's send, inside the timed
block: one send per block of 700 requests, as a worker serving 3,500 tiles a
second sends every 200 ms. Left to its timer, the writer's send would fall in
one block of every few, and that block alone would pay for all of them.
Ratios are paired within a round.

No sockets, no load generator, no scheduler between client and server: the
figure moves little with the machine's load, where the gunicorn figures do.
Needs a Redis for recording (a private ``redis-server``, or
``TILESTATUS_BENCH_REDIS_URL``), as ``python -m benchmarks`` does.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import config
from .load import WARM_GRID, warm_path

#: The compared applications: (label, application kind, environment). ``django`` is
#: Django's WSGI handler alone, ``example`` the example project's ``FastPath``-wrapped one.
VARIANTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "bare": ("TileStache `WSGITileServer`, nothing recorded", "bare", {}),
    "django_off": (
        "through Django, `ENABLED: False`",
        "django",
        {"TILESTATUS_ENABLED": "0", "TILESTATUS_FAST_PATH": "0"},
    ),
    "django_on": (
        "through Django, recording",
        "django",
        {"TILESTATUS_ENABLED": "1", "TILESTATUS_FAST_PATH": "0"},
    ),
    "middleware_on": (
        "fast path middleware (after SecurityMiddleware, as in the example project), recording",
        "django",
        {"TILESTATUS_ENABLED": "1", "TILESTATUS_FAST_PATH": "1"},
    ),
    "fast_off": (
        "fast path (WSGI wrapper), `ENABLED: False`",
        "example",
        {"TILESTATUS_ENABLED": "0", "TILESTATUS_FAST_PATH": "1"},
    ),
    "fast_on": (
        "fast path (WSGI wrapper), recording (the example project)",
        "example",
        {"TILESTATUS_ENABLED": "1", "TILESTATUS_FAST_PATH": "1"},
    ),
}
#: Key prefix the recording processes write under.
PREFIX = "bench-in-process"
ROUNDS = 30
REQUESTS = 700


@dataclass
class CpuRow:
    """One block: a variant's requests in one round and the CPU seconds they took."""

    round: int
    variant: str
    requests: int
    cpu: float

    @property
    def micros(self) -> float:
        """CPU microseconds per request."""
        return self.cpu / self.requests * 1e6

    @property
    def per_cpu(self) -> float:
        """Requests per CPU second: a ratio of these is a throughput ratio."""
        return self.requests / self.cpu if self.cpu else 0.0


# -- the worker process ----------------------------------------------------------


def _application(kind: str) -> Any:
    if kind == "bare":
        from .apps.bare import application

        return application
    if kind == "example":
        from example_project.wsgi import application

        return application
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def _environs(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": warm_path(prefix, index),
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for index in range(WARM_GRID * WARM_GRID)
    ]


def _caller(application: Any, prefix: str) -> Callable[[int, int], int]:
    """``call(first, count)``: ``count`` requests from the ``first`` tile on; the errors."""
    environs = _environs(prefix)
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def call(first: int, count: int) -> int:
        statuses.clear()
        for index in range(first, first + count):
            environ = dict(environs[index % len(environs)])
            environ["wsgi.input"] = io.BytesIO()
            answer = application(environ, start_response)
            for _ in answer:
                pass
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        return sum(1 for status in statuses if not status.startswith("200"))

    return call


def _writer() -> Any:
    """The process's recorder, if it records, sending only when told to."""
    if "django_tilestatus" not in sys.modules:
        return None
    from django_tilestatus.recording import recorder

    writer = recorder.existing_recorder()
    if writer is not None:
        writer.interval = 3600.0  # from its next wait on
        writer.flush()
    return writer


def worker(kind: str) -> None:
    """Serve blocks as the parent asks: a line ``N`` in, ``requests cpu errors`` out."""
    application = _application(kind)
    call = _caller(application, "" if kind == "bare" else "/tiles")
    errors = call(0, WARM_GRID * WARM_GRID)  # every tile cached, every code path warm
    if errors:
        raise SystemExit(f"{kind}: {errors} warm-up requests failed")
    writer = _writer()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    first = 0
    for line in sys.stdin:
        count = int(line)
        mark = time.process_time()
        errors = call(first, count)
        if writer is not None:
            writer.flush()
        cpu = time.process_time() - mark
        first += count
        out.write(f"{count} {cpu:.9f} {errors}\n")
        out.flush()


# -- the parent ------------------------------------------------------------------


class Worker:
    def __init__(self, name: str, env: dict[str, str]):
        _, kind, extra = VARIANTS[name]
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.in_process", "--worker", kind],
            cwd=config.ROOT,
            env={**env, **extra},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"in-process benchmark: {self.name} did not start")

    def block(self, count: int) -> tuple[int, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        requests, cpu, errors = self.process.stdout.readline().split()
        if int(errors):
            raise SystemExit(f"in-process benchmark: {self.name} answered {errors} errors")
        return int(requests), float(cpu)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(
    redis_url: str,
    config_file: os.PathLike[str] | str,
    rounds: int = ROUNDS,
    requests: int = REQUESTS,
    progress: Callable[[str], None] = lambda message: None,
    names: Iterable[str] = VARIANTS,
) -> list[CpuRow]:
    """Alternate blocks of ``requests`` warm tiles between the variants for ``rounds``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.apps.settings",
        "DJANGO_DEBUG": "0",
        config.CONFIG_ENV: str(config_file),
        "TILESTATUS_REDIS_URL": redis_url,
        "TILESTATUS_KEY_PREFIX": PREFIX,
    }
    workers = [Worker(name, env) for name in names]
    rows = []
    try:
        for worker_ in workers:
            worker_.wait_ready()
        for worker_ in workers:  # one block each to settle, not counted
            worker_.block(requests)
        for number in range(rounds):
            order = workers if number % 2 == 0 else list(reversed(workers))
            for worker_ in order:
                count, cpu = worker_.block(requests)
                rows.append(CpuRow(number, worker_.name, count, cpu))
            if (number + 1) % 10 == 0:
                progress(f"in-process round {number + 1}/{rounds}")
    finally:
        for worker_ in workers:
            worker_.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.in_process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds (default {ROUNDS})")
    parser.add_argument(
        "--requests", type=int, default=REQUESTS, help=f"requests per block (default {REQUESTS})"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0

    from .redis_server import redis_server
    from .report import in_process_markdown, in_process_targets

    config.VAR_DIR.mkdir(parents=True, exist_ok=True)
    config_file = config.write_config()
    started = time.monotonic()
    with redis_server() as url:
        rows = measure(
            url,
            config_file,
            args.rounds,
            args.requests,
            lambda message: print(f"  {message}", file=sys.stderr, flush=True),
        )
    print("\n".join(in_process_markdown(rows)))
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0 if all(t.met for t in in_process_targets(rows)) else 1


if __name__ == "__main__":
    sys.exit(main())
