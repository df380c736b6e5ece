"""Instructions per warm tile, counted by callgrind: what recording costs, part by part.

    .venv/bin/python -m benchmarks.callgrind [--requests N] [--annotate]

CPU timings on a shared machine move with everyone else's load; the instructions a
piece of code executes do not, so a change of a few hundred instructions per tile
shows from one run to the next. Each variant (recording off, recording on) runs in a
process of its own under ``valgrind --tool=callgrind``, which counts only inside
``sys.call_tracing`` (``--toggle-collect``; the driver wraps what it measures in it,
and nothing else calls it) and keeps each thread's count apart (``--separate-threads``):

- ``requests``: N warm tiles through the example project's application (``FastPath``),
  called with a prepared WSGI environ as ``benchmarks.in_process`` calls it, on the
  main thread;
- ``writer``: recording on, the recorder's send after each block of 700 requests (as
  ``benchmarks.in_process`` times it: a worker serving 3,500 tiles a second sends
  every 200 ms), run by a thread of the driver's so it is counted apart; the
  recorder's own thread is left asleep;
- parts, each in a thread of its own: the request's recording (``serving.answer``'s
  ``recorded`` around a prepared answer; ``begin_request`` and ``finish_request``
  alone; the cache read's phase changes), and the writer's send of 700 ended requests
  step by step (counting, taking the batch, wording and building the script's
  commands, the round trip).

Per tile is a thread's count divided by the tiles it served (or stood for). The
recording-off variant runs the same parts, so each row's difference is what recording
adds. ``--annotate`` also prints ``callgrind_annotate --inclusive=yes`` of the request
threads (C functions: the interpreter, allocation, clocks, the socket).

Needs ``valgrind`` (``apt-get install valgrind``) and a Redis (a private
``redis-server``, or ``TILESTATUS_BENCH_REDIS_URL``), as ``python -m benchmarks``
does. Takes a few minutes: everything runs some 50 times slower under valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import config
from .in_process import _application, _caller
from .load import WARM_GRID, warm_path

#: Key prefix the recording variant writes under.
PREFIX = "bench-callgrind"
#: Requests per block, and so per writer's send (as ``benchmarks.in_process``).
BLOCK = 700
REQUESTS = 2100
#: Calls of each request-side part.
PART_CALLS = 2000
#: Sends of 700 ended requests each writer part is measured over.
WRITER_SENDS = 3
VARIANTS = {"off": "0", "on": "1"}
OUT_DIR = config.VAR_DIR / "callgrind"


# -- the measured process ----------------------------------------------------------


class Measured(threading.Thread):
    """A thread that runs what it is given, counted (inside ``sys.call_tracing``) or
    not; it lives until the end, so valgrind never gives its number to another."""

    def __init__(self, label: str, tiles: int):
        super().__init__(name=f"measured-{label}", daemon=True)
        self.label = label
        #: How many tiles its count stands for.
        self.tiles = tiles
        self._work: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], bool] | None] = (
            queue.Queue()
        )
        self._done: queue.Queue[Any] = queue.Queue()
        self.start()

    def run(self) -> None:
        while (item := self._work.get()) is not None:
            function, args, counted = item
            self._done.put(sys.call_tracing(function, args) if counted else function(*args))

    def do(self, function: Callable[..., Any], *args: Any, counted: bool = True) -> Any:
        self._work.put((function, args, counted))
        return self._done.get()

    def end(self) -> None:
        self._work.put(None)


def _answer() -> Any:
    from django_tilestatus.serving.tile_server import TileResponse

    return TileResponse(200, "image/png", b"\x89PNG", [("Cache-Control", "public")])


def _labels(count: int) -> list[str]:
    return [warm_path("", index) for index in range(count)]


def _recorded_part(labels: list[str]) -> None:
    from django_tilestatus.serving.answer import recorded

    prepared = _answer()

    def work() -> Any:
        return prepared

    for label in labels:
        recorded(label, work)


def _begin_finish_part(labels: list[str]) -> None:
    from django_tilestatus.recording.recorder import active

    recorder = active()
    if recorder is None:
        return
    for label in labels:
        recorder.finish_request(recorder.begin_request(label), 0.001, 200)


def _phases_part(count: int) -> None:
    from django_tilestatus.recording import inflight

    for _ in range(count):
        request = inflight.cache_read_begins()
        if request is not None:
            inflight.cache_read_ends(request, True)


def _begin(label: str) -> Any:
    from django_tilestatus.recording.recorder import active

    recorder = active()
    return recorder.begin_request(label) if recorder is not None else None


def _finish(request: Any) -> None:
    from django_tilestatus.recording.recorder import active

    recorder = active()
    if recorder is not None and request is not None:
        recorder.finish_request(request, 0.001, 200)


def _request_parts(recorder: Any, labels: list[str]) -> list[Measured]:
    """The request's recording, part by part, each in a thread of its own (each part's
    first calls, on the main thread, are not counted)."""
    threads = []
    for label, part in (
        ("recorded() around an answer", _recorded_part),
        ("begin_request + finish_request", _begin_finish_part),
    ):
        part(labels[:50])
        thread = Measured(label, len(labels))
        thread.do(part, labels)
        threads.append(thread)
    # The phases act on the thread's own request: one in flight, begun and ended uncounted.
    thread = Measured("cache read's phase changes", len(labels))
    request = thread.do(_begin, labels[0], counted=False)
    thread.do(_phases_part, 50, counted=False)
    thread.do(_phases_part, len(labels))
    thread.do(_finish, request, counted=False)
    threads.append(thread)
    if recorder is not None:
        recorder.flush()
    return threads


def _writer_parts(recorder: Any, sends: int) -> list[Measured]:
    """The writer's send of ``BLOCK`` ended requests, step by step."""
    store = recorder._store_factory()
    steps = [
        Measured("writer: counting the ended requests", BLOCK * sends),
        Measured("writer: taking the batch (in-flight changes, queue)", BLOCK * sends),
        Measured("writer: wording the newest, building the commands", BLOCK * sends),
        Measured("writer: the round trip (redis-py, socket, reply)", BLOCK * sends),
    ]
    counting, taking, building, sending = steps
    captured: list[tuple[Any, Any]] = []
    real_run_script = store._run_script

    def capture(commands: Any, arguments: Any) -> list[Any]:
        captured.append((commands, arguments))
        return [1]

    for number in range(sends + 1):
        counted = number > 0  # the first send only warms up
        _recorded_part(_labels(BLOCK))
        now = time.time()
        counting.do(recorder._drain_ended, now, counted=counted)
        batch = taking.do(recorder._take_batch, store, now, counted=counted)
        store._run_script = capture
        try:
            building.do(recorder._write, store, batch, counted=counted)
        finally:
            store._run_script = real_run_script
        commands, arguments = captured.pop()
        sending.do(real_run_script, commands, arguments, counted=counted)
    return steps


def worker(variant: str, requests: int, parts: bool) -> None:
    """Serve, and measure, as the parent's valgrind command says; print the threads'
    labels and tiles as JSON, in the order they were made."""
    from django_tilestatus.recording.recorder import active

    application = _application("example")
    recorder = active()
    if recorder is not None:
        recorder.interval = 3600.0  # its own thread sleeps: the driver's sends are counted
    call = _caller(application, "/tiles")
    if call(0, WARM_GRID * WARM_GRID):  # every code path warm
        raise SystemExit("warm-up requests failed")
    if recorder is not None:
        recorder.flush()
    threads = [("requests", requests)]
    writer = Measured("writer", requests) if recorder is not None else None
    first = 0
    for _ in range(requests // BLOCK):
        errors = sys.call_tracing(call, (first, BLOCK))
        if errors:
            raise SystemExit(f"{errors} requests failed")
        first += BLOCK
        if writer is not None:
            writer.do(recorder.flush)
    made = [writer] if writer is not None else []
    if parts:
        made += _request_parts(recorder, _labels(PART_CALLS))
        if recorder is not None:
            made += _writer_parts(recorder, WRITER_SENDS)
    for thread in made:
        thread.end()
    threads += [(thread.label, thread.tiles) for thread in made]
    print(json.dumps(threads))


# -- the parent --------------------------------------------------------------------


def _totals(prefix: Path) -> list[tuple[int, int]]:
    """``(thread number, instructions)`` of each thread that counted anything."""
    found = []
    for path in prefix.parent.glob(prefix.name + "-*"):
        number = int(path.name.rsplit("-", 1)[1])
        total = re.search(r"^totals: (\d+)", path.read_text(errors="replace"), re.M)
        if total is not None and int(total[1]):
            found.append((number, int(total[1])))
    return sorted(found)


def run_variant(
    variant: str, env: dict[str, str], requests: int, parts: bool
) -> tuple[dict[str, float], Path]:
    """Instructions per tile by thread label, and where callgrind's files went."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    prefix = OUT_DIR / f"callgrind.{variant}"
    for old in OUT_DIR.glob(prefix.name + "*"):
        old.unlink()
    command = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--collect-atstart=no",
        "--toggle-collect=sys_call_tracing",
        f"--callgrind-out-file={prefix}",
        sys.executable,
        "-m",
        "benchmarks.callgrind",
        "--worker",
        variant,
        "--requests",
        str(requests),
    ] + ([] if parts else ["--no-parts"])
    done = subprocess.run(
        command,
        cwd=config.ROOT,
        env={**env, "TILESTATUS_ENABLED": VARIANTS[variant]},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{variant}: the measured process failed:\n{done.stderr[-3000:]}")
    labels = json.loads(done.stdout.strip().splitlines()[-1])
    totals = _totals(prefix)
    if len(totals) != len(labels):
        raise SystemExit(
            f"{variant}: {len(totals)} threads counted, {len(labels)} expected ({prefix}*)"
        )
    return {
        label: total / tiles for (label, tiles), (_, total) in zip(labels, totals, strict=True)
    }, prefix


def annotate(prefix: Path, lines: int = 40) -> str:
    """``callgrind_annotate --inclusive=yes`` of the request thread (thread 1)."""
    done = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", f"{prefix}-01"],
        capture_output=True,
        text=True,
    )
    return "\n".join(done.stdout.splitlines()[:lines])


def markdown(figures: dict[str, dict[str, float]]) -> list[str]:
    off, on = figures.get("off", {}), figures.get("on", {})
    rows = []
    for label in list(on) + [label for label in off if label not in on]:
        before, after = off.get(label), on.get(label)
        difference = (after or 0.0) - (before or 0.0)
        rows.append(
            f"| {label} | {'–' if before is None else f'{before:,.0f}'} "
            f"| {'–' if after is None else f'{after:,.0f}'} | {difference:+,.0f} |"
        )
    return [
        "Instructions per warm tile (callgrind), by thread:",
        "",
        "| thread or part | recording off | recording on | on − off |",
        "|---|---|---|---|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.callgrind",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=REQUESTS,
        help=f"warm requests, a multiple of {BLOCK} (default {REQUESTS})",
    )
    parser.add_argument("--no-parts", action="store_true", help="only the whole requests")
    parser.add_argument(
        "--annotate", action="store_true", help="print the request threads' C functions"
    )
    parser.add_argument("--variants", default="off,on", help="off, on or both (default)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.requests, not args.no_parts)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")

    from .redis_server import redis_server

    config.VAR_DIR.mkdir(parents=True, exist_ok=True)
    config_file = config.write_config()
    started = time.monotonic()
    figures: dict[str, dict[str, float]] = {}
    with redis_server() as url:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.apps.settings",
            "DJANGO_DEBUG": "0",
            config.CONFIG_ENV: str(config_file),
            "TILESTATUS_REDIS_URL": url,
            "TILESTATUS_KEY_PREFIX": PREFIX,
            "TILESTATUS_FAST_PATH": "1",
            "PYTHONHASHSEED": "0",  # the same dict layouts run to run
        }
        # Cache the warm tiles natively first: rendering under valgrind is slow.
        subprocess.run(
            [sys.executable, "-c", "from benchmarks.in_process import worker; worker('bare')"],
            cwd=config.ROOT,
            env=env,
            input="",
            capture_output=True,
            check=True,
        )
        for variant in args.variants.split(","):
            print(f"  {variant} under callgrind...", file=sys.stderr, flush=True)
            figures[variant], prefix = run_variant(variant, env, args.requests, not args.no_parts)
            if args.annotate:
                print(f"\n{variant}, the request thread:\n\n{annotate(prefix)}\n")
    print("\n".join(markdown(figures)))
    print(f"\n({time.monotonic() - started:.0f} s; callgrind's files: {OUT_DIR})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
