"""What ``tilestatus_seed`` shows while it runs, and its one-process worker (a thread)."""

from __future__ import annotations

import io
import threading
from typing import Any

from django.core.management.base import OutputWrapper

from django_tilestatus.seeding.jobs import RUNNING, Job
from django_tilestatus.seeding.local import LocalWorkers
from django_tilestatus.seeding.progress import Progress, line


def job(done: int, total: int = 10_000, started: float = 100.0) -> Job:
    return Job(
        "j1",
        {"layers": ["demo"]},
        RUNNING,
        total,
        4,
        done=done,
        skipped=5,
        failed=1,
        started=started,
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_few_seconds_off_a_terminal() -> None:
    stream = io.StringIO()
    out = OutputWrapper(stream)
    progress = Progress(out, 10_000, every=5.0)
    progress.update(job(994), now=110.0)
    progress.update(job(1994), now=112.0)  # within 5 s: nothing
    progress.update(job(3994), now=116.0)
    progress.close(job(9994))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0] == (
        "j1: 1,000/10,000 tiles (10.0%), 994 rendered, 5 skipped, 1 failed, "
        "100.0 tiles/s, ETA 1m30s"
    )
    assert "ETA" in lines[-1]


def test_a_bar_on_a_terminal() -> None:
    out = Terminal()
    progress = Progress(out, 10_000)
    progress.update(job(4994), now=150.0)
    progress.close(job(9994))
    shown = out.getvalue()
    assert "rendered 9,994, skipped 5, errors 1" in shown or "rendered 4,994" in shown
    assert "10.0k/10.0k" in shown


def test_durations_read_in_hours_minutes_and_seconds() -> None:
    assert line(job(0, started=1.0), 101.0).endswith("0.1 tiles/s, ETA 46h16m")
    assert line(job(94, total=1_000, started=1.0), 101.0).endswith("ETA 15m00s")  # 1 tile/s
    assert line(job(994, total=1_050, started=90.0), 100.0).endswith("ETA 0s")
    not_started = Job("j2", {}, RUNNING, 10, 1)
    assert line(not_started, 100.0).endswith("0.0 tiles/s, ETA ?")


def test_one_process_works_in_a_thread_of_the_command_and_stops_when_told() -> None:
    started = threading.Event()
    seen: list[Any] = []

    def work(job_id: str, stopped: Any) -> int:
        seen.append(job_id)
        started.set()
        while not stopped():
            started.wait(0.01)
        return 0

    workers = LocalWorkers("j1", 1)
    workers.start(work)
    assert started.wait(5) and workers.alive()
    workers.stop()
    workers.join(5)
    assert not workers.alive() and seen == ["j1"] and workers.error is None


def test_an_error_in_the_worker_thread_is_kept_for_the_command() -> None:
    def work(job_id: str, stopped: Any) -> int:
        raise RuntimeError("the layer is gone")

    workers = LocalWorkers("j1", 1)
    workers.start(work)
    workers.join(5)
    assert isinstance(workers.error, RuntimeError)
