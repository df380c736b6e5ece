"""The one gunicorn launcher: the example project (or any WSGI application) on a free
loopback port, with handles on its master, its workers and its log.

The end-to-end, browser and reliability tests and the benchmarks all start their
servers here, so each runs the same command and waits for readiness the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from . import ROOT, free_port, wait_until
from .http import wait_for_answer
from .processes import children

EXAMPLE_APP = "example_project.wsgi:application"
#: Seconds gunicorn may take to answer its first request (all workers up), or to stop.
START_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0


def isolation_options() -> list[str]:
    """gunicorn 27+ opens a control socket at one fixed path per user; servers
    started side by side (tests, benchmarks, other checkouts) must not share it."""
    import gunicorn

    major = int(gunicorn.__version__.split(".")[0])
    return ["--no-control-socket"] if major >= 27 else []


def gunicorn_command(
    port: int,
    workers: int,
    application: str = EXAMPLE_APP,
    timeout: int = 30,
    options: Sequence[str] = (),
) -> list[str]:
    """The command serving ``application`` on ``127.0.0.1:port``."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        application,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        str(timeout),
        "--graceful-timeout",
        "5",
        *isolation_options(),
        *options,
    ]


class GunicornServer:
    """``gunicorn <application>`` on a free loopback port; ``with`` starts and stops it.

    The environment is this process's without its ``TILESTATUS_*`` variables (a
    developer's own settings never leak into a server under test), with the example
    project's settings and ``DJANGO_DEBUG=0``, then ``env`` over them.
    """

    def __init__(
        self,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        *,
        workers: int = 2,
        application: str = EXAMPLE_APP,
        timeout: int = 30,
        options: Sequence[str] = (),
        wrapper: Sequence[str] = (),
        ready_path: str = "/tiles/",
    ):
        self.env = env or {}
        #: Appended to, never truncated: several servers may share one log.
        self.log = log
        self.workers = workers
        self.application = application
        self.timeout = timeout
        self.options = list(options)
        #: A command the server runs under, e.g. ``["unshare", "--pid", "--fork"]``.
        self.wrapper = list(wrapper)
        #: A path that answers 200 once the application serves.
        self.ready_path = ready_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start the process and return at once (see ``wait_ready``)."""
        command = [
            *self.wrapper,
            *gunicorn_command(
                self.port, self.workers, self.application, self.timeout, self.options
            ),
        ]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
        environment.update(
            {"DJANGO_SETTINGS_MODULE": "example_project.settings", "DJANGO_DEBUG": "0", **self.env}
        )
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
            )
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]  # the server has its own copy

    def wait_ready(self, seconds: float = START_TIMEOUT) -> None:
        """Wait until ``ready_path`` answers 200 with every worker up; stop it and raise
        RuntimeError (with the log) if it exits or does not get there in ``seconds``."""
        assert self.process is not None, "spawn() first"
        try:
            wait_for_answer(
                self.base,
                self.ready_path,
                self.process,
                seconds,
                ready=lambda: len(self.worker_pids()) == self.workers,
            )
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(
                f"gunicorn {self.application}: {exc}\n{self.log_text()[-3000:]}"
            ) from None

    def start(self, seconds: float = START_TIMEOUT) -> None:
        self.spawn()
        self.wait_ready(seconds)

    def __enter__(self) -> GunicornServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def master_pid(self) -> int:
        """The gunicorn master's PID as this process sees it (past any wrapper)."""
        assert self.process is not None
        pid = self.process.pid
        for _ in self.wrapper[:1]:  # a wrapper that forks has the master as its child
            found = children(pid)
            if found:
                pid = found[0]
        return pid

    def worker_pids(self) -> set[int]:
        return set(children(self.master_pid))

    def wait_for_workers(
        self, predicate: Callable[[set[int]], bool], seconds: float = 20.0
    ) -> set[int]:
        """Poll the worker PIDs until ``predicate(pids)`` holds; returns them."""
        found: set[int] = set()

        def check() -> bool:
            found.clear()
            found.update(self.worker_pids())
            return predicate(found)

        wait_until(check, seconds)
        return found

    def log_text(self) -> str:
        if self.log is None:
            return ""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.log_text().splitlines() if needle in line]

    def stop(self) -> int | None:
        """SIGTERM the master and wait (SIGKILL all after STOP_TIMEOUT); its exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.master_pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                for pid in [*self.worker_pids(), self.master_pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        return process.returncode
