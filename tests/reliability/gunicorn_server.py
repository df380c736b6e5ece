"""The example project under gunicorn, with handles on its master and workers.

Unlike ``tests/servers.gunicorn``, this keeps the process, so a test can find
the workers, SIGKILL one, read the log and count lines in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..servers import ROOT, free_port, gunicorn_command

#: Seconds gunicorn may take to answer its first request, or to stop.
START_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
#: A gunicorn config file that shrinks the recorder's queue (see its docstring).
SMALL_QUEUE_CONFIG = Path(__file__).with_name("gunicorn_small_queue.py")


def write_tilestache_config(directory: Path, slow_seconds: float = 30.0) -> Path:
    """A TileStache config with the demo layer, a slow layer and a private Disk cache."""
    config = {
        "cache": {
            "name": "Disk",
            "path": str(directory / "tiles"),
            "umask": "0022",
            "dirs": "portable",
        },
        "layers": {
            "demo": {
                "provider": {"class": "example_project.demo_provider:DemoProvider"},
                "allowed origin": "*",
                "maximum cache age": 60,
                "redirects": {"jpeg": "png"},
            },
            "slow": {
                "provider": {
                    "class": "tests.reliability.providers:Slow",
                    "kwargs": {"seconds": slow_seconds},
                },
                "write cache": False,
            },
            "points": {"provider": {"class": "tests.providers:Points"}},
        },
    }
    path = directory / "tilestache.cfg"
    path.write_text(json.dumps(config, indent=2))
    return path


def children(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


class GunicornServer:
    """``gunicorn example_project.wsgi:application`` on a free loopback port."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        workers: int = 2,
        wrapper: list[str] | None = None,
        options: list[str] | None = None,
    ):
        self.env = env
        self.log = log
        self.workers = workers
        #: A command the server runs under, e.g. ``["unshare", "--pid", "--fork"]``.
        self.wrapper = wrapper or []
        self.options = options or []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    def start(self) -> None:
        command = [*self.wrapper, *gunicorn_command(self.port, self.workers, *self.options)]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
        environment.update(
            {"DJANGO_SETTINGS_MODULE": "example_project.settings", "DJANGO_DEBUG": "0", **self.env}
        )
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.process.returncode}: {self.log_text()}"
                )
            try:
                urllib.request.urlopen(self.base + "/tiles/", timeout=2).read()
                if len(self.worker_pids()) == self.workers:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"gunicorn did not start in {START_TIMEOUT} s: {self.log_text()}"
                )
            time.sleep(0.1)

    @property
    def master_pid(self) -> int:
        """The gunicorn master's PID as this test sees it (past any wrapper)."""
        assert self.process is not None
        pid = self.process.pid
        for _ in self.wrapper[:1]:  # a wrapper that forks has the master as its child
            found = children(pid)
            if found:
                pid = found[0]
        return pid

    def worker_pids(self) -> set[int]:
        return set(children(self.master_pid))

    def wait_for_workers(self, predicate: Any, seconds: float = 20.0) -> set[int]:
        """Poll the worker PIDs until ``predicate(pids)`` holds; returns them."""
        deadline = time.monotonic() + seconds
        while True:
            pids = self.worker_pids()
            if predicate(pids) or time.monotonic() > deadline:
                return pids
            time.sleep(0.1)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.log_text().splitlines() if needle in line]

    def stop(self) -> int | None:
        """SIGTERM the master and wait; returns its exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            os.kill(self.master_pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                for pid in [*self.worker_pids(), self.master_pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return process.returncode
