"""Running a seeding job in N local processes (or one thread), stopped cleanly.

Each process is started with multiprocessing's ``spawn`` method (no fork of a
process with threads), sets Django up from ``DJANGO_SETTINGS_MODULE`` as any
worker does, and claims chunks until none is left (``running.work``); it records
its tiles like a tile worker, and says ``Destroyed`` when it ends. A process told
to stop (the parent's stop event, or its own SIGTERM) stops after its current
metatile; SIGINT (Ctrl-C reaches the whole process group) is the parent's to handle.

This module imports no Django at its top: a spawned process imports it first.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable
from typing import Any


def process_main(job_id: str, stop: Any) -> None:
    """The body of one seeding process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    told = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: told.set())

    import django

    django.setup()
    from ..recording.recorder import say_destroyed_now
    from .running import work

    try:
        work(job_id, lambda: told.is_set() or stop.is_set())
    finally:
        # multiprocessing ends its processes with os._exit: no atexit handlers run.
        say_destroyed_now()


class LocalWorkers:
    """``processes`` processes (1: a thread of this process) working on one job."""

    def __init__(self, job_id: str, processes: int):
        self.job_id = job_id
        self.processes = processes
        self._thread: threading.Thread | None = None
        self._children: list[Any] = []
        self.error: BaseException | None = None
        if processes > 1:
            context = multiprocessing.get_context("spawn")
            self.stop_event: Any = context.Event()
            self._children = [
                context.Process(
                    target=process_main,
                    args=(job_id, self.stop_event),
                    name=f"tilestatus-seed-{index}",
                    daemon=False,
                )
                for index in range(processes)
            ]
        else:
            self.stop_event = threading.Event()

    def start(self, work: Callable[[str, Callable[[], bool]], int] | None = None) -> None:
        if self._children:
            for child in self._children:
                child.start()
            return
        if work is None:
            from .running import work as work_here

            work = work_here
        chosen = work

        def run() -> None:
            try:
                chosen(self.job_id, self.stop_event.is_set)
            except BaseException as exc:  # noqa: BLE001 - reported by the parent
                self.error = exc

        self._thread = threading.Thread(target=run, name="tilestatus-seed", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        if self._thread is not None:
            return self._thread.is_alive()
        return any(child.is_alive() for child in self._children)

    def stop(self) -> None:
        """Ask every worker to stop after its current metatile."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        for child in self._children:
            child.join(timeout)

    def exit_codes(self) -> list[int | None]:
        return [child.exitcode for child in self._children]

    def kill(self) -> None:
        for child in self._children:
            if child.is_alive():
                child.kill()
