"""Running a seeding job in this process and N - 1 more local processes, stopped cleanly.

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
    """``processes`` workers on one job: a thread of this process, and ``processes - 1``
    spawned processes beside it.

    The command's own process renders too rather than only watching: it has Django and
    the layers loaded already, so ``--processes 1`` starts nothing, and ``--processes 2``
    on two cores keeps both busy with one process start-up (about a second of Django
    set-up) instead of two.
    """

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
                for index in range(1, processes)
            ]
        else:
            self.stop_event = threading.Event()

    def start(self, work: Callable[[str, Callable[[], bool]], int] | None = None) -> None:
        """Start the processes, then this process's thread (``work``: its body, by
        default ``running.work``)."""
        for child in self._children:
            child.start()
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
        thread_alive = self._thread is not None and self._thread.is_alive()
        return thread_alive or any(child.is_alive() for child in self._children)

    def stop(self) -> None:
        """Ask every worker to stop after its current metatile."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        for child in self._children:
            child.join(timeout)
