"""Serving each benchmarked app under gunicorn (2 sync workers), and fetching from it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import ROOT

WORKERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    """One GET on a new connection, as a load generator against a sync worker makes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class Server:
    """One benchmarked app: a WSGI application, its environment and its tile URL prefix."""

    name: str
    label: str
    application: str
    prefix: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self, base_env: dict[str, str], log_path: os.PathLike[str] | str) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            self.application,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--backlog",
            "256",
        ]
        log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **base_env, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self, probe_path: str, timeout: float = 60) -> None:
        """Wait until ``probe_path`` (a full path) answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: gunicorn exited with {self.process.returncode}")
            try:
                status, _ = fetch(self.port, probe_path, timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: not ready within {timeout:.0f} seconds")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far.

        Wall-clock throughput on a shared machine moves with everyone else's
        load; CPU time per request moves much less, so both are reported.
        """
        assert self.process is not None
        return sum(_cpu_seconds(pid) for pid in [self.process.pid, *_children(self.process.pid)])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text.rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and fields[1] == str(pid):
                found.append(int(entry))
    return found


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    # After the command name: state ppid ... utime (14th field) stime (15th).
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields else 0.0
