"""Which request is stuck, under every worker model: gunicorn sync and gthread, and uvicorn.

The example project serves a layer whose provider hangs (``tests.providers:Hang``,
in ``hang_in_provider``) and one that raises ``SystemExit``; it records into the
real Redis under a prefix of the test's own, and the test reads what the status
page would show (``current_report``, the page's JSON) until a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.web.status_view import current_report

from .support import ROOT, free_port, wait_until
from .support.gunicorn import GunicornServer
from .support.real_redis import REAL_REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(180)]

#: Seconds after which a request is slow and its stack is taken, in the served project.
BUSY_AFTER = 1.0
HUNG = ["/hang/5/0/0.png", "/hang/5/1/0.png", "/locked/5/2/0.png", "/locked/5/2/0.png"]
FAST = "/demo/3/1/2.png"


def write_config(directory: Path) -> Path:
    """A TileStache config: the demo layer, two hanging layers (one cached, so its
    metatile is locked while it renders) and one whose provider raises SystemExit."""
    hang = {"class": "tests.providers:Hang", "kwargs": {"seconds": 60}}
    config = {
        "cache": {"name": "Disk", "path": str(directory / "tiles"), "umask": "0022"},
        "layers": {
            "demo": {"provider": {"class": "example_project.demo_provider:DemoProvider"}},
            "hang": {"provider": hang, "write cache": False},
            "locked": {"provider": hang},
            "exit": {"provider": {"class": "tests.providers:Abort"}, "write cache": False},
        },
    }
    path = directory / "tilestache.cfg"
    path.write_text(json.dumps(config))
    return path


class UvicornServer:
    """``uvicorn example_project.asgi:application``: one process, on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.base = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = self.base.rsplit(":", 1)[1]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
        environment.update({"DJANGO_SETTINGS_MODULE": "example_project.settings", **self.env})
        command = [sys.executable, "-m", "uvicorn", "example_project.asgi:application"]
        command += ["--host", "127.0.0.1", "--port", port, "--no-access-log"]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
            )
        process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log.read_text(errors='replace')}")
            urllib.request.urlopen(self.base + "/tiles/", timeout=2).read()
            return True

        wait_until(answers, 40, ignore=(urllib.error.URLError, OSError), what="uvicorn answering")

    def stop(self) -> None:
        """SIGTERM; its hung threads would keep it a minute, so SIGKILL after a second."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@pytest.fixture
def serve(tmp_path: Path, use_real_redis: str, settings: Any) -> Iterator[Callable[..., Any]]:
    """Start the example project under a worker model; stopped at teardown."""
    settings.TILESTATUS = {**settings.TILESTATUS, "BUSY_AFTER": BUSY_AFTER}  # the page's too
    started: list[Any] = []
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": use_real_redis,
        "TILESTATUS_CONFIG": str(write_config(tmp_path)),
        "TILESTATUS_BUSY_AFTER": str(BUSY_AFTER),
        "DJANGO_DEBUG": "0",
    }

    def start(kind: str, *options: str) -> Any:
        log = tmp_path / f"{kind}.log"
        if kind == "uvicorn":
            server: Any = UvicornServer(env, log)
        else:
            # Four threads for the four hung requests, and a fifth to serve a fast tile meanwhile.
            worker = ["-k", "gthread", "--threads", "5"] if kind == "gthread" else []
            # Hung requests would hold a graceful stop for its whole timeout: 1 s is enough.
            options = ("--graceful-timeout", "1", *worker, *options)
            server = GunicornServer(env, log, workers=1, options=options)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def get(base: str, path: str, timeout: float = 90) -> int:
    """GET ``/tiles<path>``: its status, or 0 when the connection broke."""
    try:
        with urllib.request.urlopen(base + "/tiles" + path, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def in_background(base: str, paths: list[str]) -> list[threading.Thread]:
    threads = [threading.Thread(target=get, args=(base, path), daemon=True) for path in paths]
    for thread in threads:
        thread.start()
    return threads


def page() -> dict[str, Any]:
    """What the status page's JSON says now."""
    return current_report().as_dict()


def wait_for(predicate: Callable[[dict[str, Any]], Any], seconds: float, why: str) -> Any:
    """Read the page until ``predicate`` holds (returns its value) or the deadline."""
    seen: list[dict[str, Any]] = [{}]

    def check() -> Any:
        seen[0] = page()
        return predicate(seen[0])

    return wait_until(
        check, seconds, what=lambda: f"{why}; the page said: {json.dumps(seen[0])[:3000]}"
    )


def busy_with(paths: list[str]) -> Callable[[dict[str, Any]], Any]:
    def predicate(data: dict[str, Any]) -> Any:
        for row in data["processes"]:
            found = Counter(request["path"] for request in row["requests"])
            if row["state"] == "busy" and found == Counter(paths):
                return row
        return None

    return predicate


@pytest.mark.parametrize("kind", ["gthread", "uvicorn"])
def test_four_hung_requests_in_one_process_are_four_with_their_paths_phases_and_stacks(
    serve: Callable[..., Any], kind: str
) -> None:
    server = serve(kind)
    in_background(server.base, HUNG)
    row = wait_for(busy_with(HUNG), 30, "four requests in flight in one process")
    seen = time.monotonic()
    pid = row["pid"]
    assert row["in_flight"] == 4 and row["state_text"] == "busy with 4 requests"

    # Two requests for one metatile: one renders, holding its cache lock; the other waits.
    def lock_phases(data: dict[str, Any]) -> Any:
        [row] = [r for r in data["processes"] if r["pid"] == pid]
        texts = sorted(r["phase_text"] for r in row["requests"] if r["path"].startswith("/locked"))
        return len(texts) == 2 and texts[0].startswith("rendering for") and texts

    texts = wait_for(lock_phases, 10, "one render and one wait for the metatile's lock")
    assert texts[1].startswith("waiting for the cache lock on locked 5/2/0 for ")

    # A fast tile served meanwhile by the same process leaves the four busy.
    assert get(server.base, FAST, timeout=30) == 200

    def served_fast(data: dict[str, Any]) -> Any:
        return any(
            m["pid"] == pid and m["message"].startswith(f"Finished {FAST} in ")
            for m in data["messages"]
        )

    data = wait_for(lambda d: served_fast(d) and d, 10, "the fast tile's Finished")
    [row] = [r for r in data["processes"] if r["pid"] == pid]
    assert row["state"] == "busy" and Counter(r["path"] for r in row["requests"]) == Counter(HUNG)
    assert row["served"] >= 1

    # Past BUSY_AFTER each is slow, and its stack names the provider function it hangs in.
    def stacks(data: dict[str, Any]) -> Any:
        [row] = [r for r in data["processes"] if r["pid"] == pid]
        hung = [r for r in row["requests"] if r["path"].startswith("/hang/")]
        named = [r for r in hung if r["slow"] and "in hang_in_provider" in (r["stack_text"] or "")]
        return len(named) == 2 and named

    named = wait_for(stacks, BUSY_AFTER + 1.0 - (time.monotonic() - seen), "stack snapshots")
    for request in named:
        # The innermost frame last (sleep is C: no frame), as Python prints a traceback.
        innermost = [line for line in request["stack_text"].splitlines() if "File " in line][-1]
        assert "line " in innermost and innermost.endswith(", in hang_in_provider")


def test_a_gunicorn_timeout_shows_the_worker_gone_while_busy_on_its_path(
    serve: Callable[..., Any],
) -> None:
    server = serve("sync", "--timeout", "3")
    [worker] = server.worker_pids()
    in_background(server.base, ["/hang/6/1/1.png"])

    def gone(data: dict[str, Any]) -> Any:
        rows = [r for r in data["processes"] if r["pid"] == worker and r["state"] == "gone"]
        return rows and data

    data = wait_for(gone, 40, "the timed-out worker shown gone")
    [row] = [r for r in data["processes"] if r["pid"] == worker]
    assert row["state_text"] == "gone while busy on /hang/6/1/1.png"
    [request] = row["requests"]
    assert request["gone"] and request["text"] == "gone while busy on /hang/6/1/1.png"
    assert "in hang_in_provider" in request["stack_text"]
    errors = [m["message"] for m in data["messages"] if m["pid"] == worker]
    assert any(m.startswith("Error: SystemExit: 1 after ") for m in errors), (
        errors
    )  # gunicorn's SIGABRT handler calls sys.exit(1)
    server.wait_for_workers(lambda pids: len(pids) == 1 and worker not in pids)


@pytest.mark.parametrize("kind", ["sync", "uvicorn"])
def test_a_provider_raising_system_exit_leaves_no_request_shown_busy(
    serve: Callable[..., Any], kind: str
) -> None:
    server = serve(kind)
    assert get(server.base, "/exit/1/0/0.png", timeout=30) in (0, 500)

    def errored(data: dict[str, Any]) -> Any:
        return [m for m in data["messages"] if m["message"].startswith("Error: SystemExit after ")]

    [error] = wait_for(errored, 20, "the Error of the request")
    pid = error["pid"]
    if kind == "sync":  # gunicorn's worker catches it, answers, and goes on
        row = wait_for(lambda d: _row(d, pid, "idle"), 10, "the worker idle")
        assert row["requests"] == []
        assert get(server.base, FAST, timeout=30) == 200
    else:  # asyncio lets SystemExit out of uvicorn's loop: the request is what it died on
        row = wait_for(lambda d: _row(d, pid, "gone"), 20, "the process gone")
        assert row["state_text"] == "gone while busy on /exit/1/0/0.png"
        assert row["message"] == "Destroyed"
    assert not [r for r in page()["processes"] if r["state"] == "busy"]


def _row(data: dict[str, Any], pid: int, state: str) -> Any:
    rows = [r for r in data["processes"] if r["pid"] == pid and r["state"] == state]
    return rows[0] if rows else None
