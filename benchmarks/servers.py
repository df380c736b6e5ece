"""The benchmarked apps, each served under gunicorn (2 sync workers) by the tests' launcher."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.gunicorn import GunicornServer
from tests.support.processes import children

WORKERS = 2


@dataclass
class Server:
    """One benchmarked app: a WSGI application, its environment and its tile URL prefix."""

    name: str
    label: str
    application: str
    prefix: str
    env: dict[str, str] = field(default_factory=dict)
    gunicorn: GunicornServer | None = None

    @property
    def port(self) -> int:
        assert self.gunicorn is not None, "start() first"
        return self.gunicorn.port

    @property
    def base(self) -> str:
        assert self.gunicorn is not None, "start() first"
        return self.gunicorn.base

    def start(self, base_env: dict[str, str], log_path: Path, probe_path: str) -> None:
        """Start gunicorn and return at once (``wait_ready`` waits), so servers boot together.

        ``probe_path`` (a full path) must answer 200 for the server to count as ready.
        """
        self.gunicorn = GunicornServer(
            {**base_env, **self.env},
            log_path,
            workers=WORKERS,
            application=self.application,
            timeout=60,
            options=["--worker-class", "sync", "--backlog", "256"],
            ready_path=probe_path,
        )
        self.gunicorn.spawn()

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until the probe path answers 200 with both workers up."""
        assert self.gunicorn is not None, "start() first"
        try:
            self.gunicorn.wait_ready(timeout)
        except RuntimeError as exc:
            raise SystemExit(
                f"{self.name}: not ready within {timeout:.0f} seconds: {exc}"
            ) from None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far.

        Wall-clock throughput on a shared machine moves with everyone else's
        load; CPU time per request moves much less, so both are reported.
        """
        assert self.gunicorn is not None and self.gunicorn.process is not None
        master = self.gunicorn.process.pid
        return sum(_cpu_seconds(pid) for pid in [master, *children(master)])

    def stop(self) -> None:
        gunicorn, self.gunicorn = self.gunicorn, None
        if gunicorn is not None:
            gunicorn.stop()


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    # After the command name: state ppid ... utime (14th field) stime (15th).
    return (int(fields[11]) + int(fields[12])) / _TICKS
