"""The one ``redis-server`` launcher: a private server on a free loopback port.

The reliability tests inject faults (kill, pause, fill up) into one, never into
the shared Redis the rest of the suite uses; the benchmarks run on one. The
server keeps nothing on disk, and a restart comes back on the same port, empty,
as a Redis without persistence would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from . import WaitTimeoutError, free_port, wait_until

#: Seconds a start or stop may take before the test fails rather than waits.
START_TIMEOUT = 20.0


class RedisServer:
    """One ``redis-server`` process that can be stopped, paused and restarted."""

    def __init__(
        self,
        workdir: Path,
        password: str | None = None,
        options: Sequence[str] = (),
        sentinel_config: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password = password
        #: More ``redis-server`` options, e.g. ``["--databases", "16"]``.
        self.options = list(options)
        #: With a config, the server is a Redis Sentinel (``--sentinel``) run from it.
        self.sentinel_config = sentinel_config
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.log = workdir / "redis.log"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def client(self, **options: Any) -> redis.Redis:
        """A client for the test itself, with timeouts so a fault cannot hang it."""
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2, **options)

    def log_text(self) -> str:
        """The end of the server's log, for a test's failure message."""
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        command = [binary]
        if self.sentinel_config is not None:  # a sentinel rewrites its config: one of its own
            path = self.workdir / "sentinel.conf"
            path.write_text(self.sentinel_config)
            command += [str(path), "--sentinel"]
        command += [
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log),
        ]
        if self.password:
            command += ["--requirepass", self.password]
        command += self.options
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self.paused = False
        client = self.client()
        process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            return bool(client.ping())

        try:
            wait_until(answers, START_TIMEOUT, interval=0.05, ignore=(redis.ConnectionError,))
        except (RuntimeError, WaitTimeoutError):
            self.stop()
            raise RuntimeError(f"redis-server did not start; see {self.log}") from None
        finally:
            client.close()

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a crash would."""
        process = self._running()
        if self.paused:
            self.resume()
        process.kill()
        process.wait(timeout=START_TIMEOUT)

    def restart(self) -> None:
        """Start again on the same port (empty: nothing was persisted)."""
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but never answered."""
        os.kill(self._running().pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.kill(self._running().pid, signal.SIGCONT)
        self.paused = False

    def info(self, section: str) -> dict:
        client = self.client()
        try:
            return client.info(section)
        finally:
            client.close()

    def set_config(self, name: str, value: str) -> None:
        client = self.client()
        try:
            client.config_set(name, value)
        finally:
            client.close()

    def stop(self) -> None:
        """Clean up: whatever state the test left the server in."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        if self.paused:
            self.resume()
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("redis-server is not running")
        return self.process
