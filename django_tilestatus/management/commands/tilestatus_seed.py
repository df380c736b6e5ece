"""``manage.py tilestatus_seed``: render a layer's tiles ahead of traffic.

Exit status: 0 the job is done; 1 bad input (one line, no traceback); 3 the job
ended with tiles that failed; 4 it was cancelled; 5 it was interrupted (Ctrl-C,
SIGTERM, a worker process killed): ``--resume JOB`` does the rest.
"""

from __future__ import annotations

import getpass
import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import conf
from ...seeding.jobs import CANCELLED, DONE, FAILED, INTERRUPTED, Job, JobStore
from ...seeding.local import LocalWorkers
from ...seeding.options import add_area_arguments, count_tiles, request_of
from ...seeding.plan import Plan
from ...seeding.progress import Progress, _duration
from ...seeding.running import describe, job_store, mean_render_seconds, plan_of

EXIT_FAILED, EXIT_CANCELLED, EXIT_INTERRUPTED = 3, 4, 5
#: Seconds between reads of the job while it runs here.
POLL = 0.25


class TerminatedError(Exception):
    """SIGTERM reached the command."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise TerminatedError()


def _started_by() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name: the host alone
        user = "?"
    return f"{user}@{conf.get_config().host}"


class Command(BaseCommand):
    help = (
        "Render the tiles of layers at zooms A-B within a bounding box or GeoJSON polygons "
        "ahead of traffic, through the layer and its cache as requests do, skipping tiles "
        "already cached; in N local processes or as tasks of Django's task framework. "
        "Exit status: 0 done, 1 bad input, 3 tiles failed, 4 cancelled, 5 interrupted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_area_arguments(parser)
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="Local processes rendering: this one and N - 1 more (default 1).",
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Send the chunks as tasks of Django's task framework (TASKS) instead.",
        )
        parser.add_argument("--queue", help="With --enqueue: the task queue's name.")
        parser.add_argument("--backend", help="With --enqueue: the TASKS backend's alias.")
        parser.add_argument("--force", action="store_true", help="Render cached tiles again too.")
        parser.add_argument("--dry-run", action="store_true", help="Print the plan; write nothing.")
        parser.add_argument("--resume", metavar="JOB", help="Do what is left of a job.")
        parser.add_argument("--cancel", metavar="JOB", help="Cancel a job.")
        parser.add_argument(
            "--max-tiles",
            type=int,
            default=10**6,
            help="Refuse a job of more tiles than this without --yes (default 1000000).",
        )
        parser.add_argument("--yes", action="store_true", help="Seed past --max-tiles.")
        parser.add_argument(
            "--progress-every",
            type=float,
            default=5.0,
            help="Seconds between progress lines when the output is not a terminal.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["processes"] < 1:
            raise CommandError("--processes must be 1 or more.")
        store = job_store()
        if options["cancel"]:
            self._cancel(store, options["cancel"])
            return
        job: Job | None
        if options["resume"]:
            job = self._resumable(store, options["resume"])
        else:
            job = self._new_job(store, options)
        if job is None:
            return
        if options["enqueue"]:
            self._enqueue(store, job, options)
            return
        self._run_here(store, job, options)

    # -- the job --------------------------------------------------------------

    def _cancel(self, store: JobStore, job_id: str) -> None:
        job = store.get(job_id)
        if job is None:
            raise CommandError(f"Unknown seeding job {job_id!r}.")
        if not store.cancel(job_id):
            raise CommandError(f"Job {job_id} has already ended ({job.state}).")
        self.stdout.write(f"Cancelled job {job_id}; its workers stop after their metatile.")

    def _resumable(self, store: JobStore, job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise CommandError(f"Unknown seeding job {job_id!r} (or expired).")
        if job.state == DONE:
            raise CommandError(f"Job {job_id} is done: nothing to resume.")
        try:
            plan_of(job.spec)
        except KeyError as exc:
            raise CommandError(f"Job {job_id} names a layer no longer configured: {exc}.") from None
        self.stdout.write(f"Resuming job {job_id}: {job.chunks - job.chunks_done} chunks left.")
        return job

    def _new_job(self, store: JobStore, options: dict[str, Any]) -> Job | None:
        request = request_of(options)
        plan = request.plan
        total, exact = count_tiles(plan)
        if options["dry_run"]:
            self._print_plan(plan, total, exact, options["processes"])
            return None
        if total > options["max_tiles"] and not options["yes"]:
            raise CommandError(
                f"The job has {'' if exact else 'up to '}{total:,} tiles, more than "
                f"--max-tiles {options['max_tiles']:,}: pass --yes to seed them."
            )
        spec = dict(request.spec, enqueued=bool(options["enqueue"]))
        job_id = store.create(spec, total, plan.chunks, _started_by())
        job = store.get(job_id)
        assert job is not None
        self.stdout.write(
            f"Job {job_id}: {total:,} tiles in {plan.chunks:,} chunks "
            f"({', '.join(job.layers)}, zooms {job.zooms})."
        )
        return job

    def _print_plan(self, plan: Plan, total: int, exact: bool, processes: int) -> None:
        write = self.stdout.write
        layers = [segment.layer.name for segment in plan.segments]
        means = mean_render_seconds(list(dict.fromkeys(layers)))
        write(f"{'layer':<16} {'zoom':>4} {'tiles':>14} {'metatiles':>12}")
        seconds = 0.0
        known = True
        metatiles = 0
        for figures in plan.figures():
            write(
                f"{figures.layer:<16} {figures.zoom:>4} {figures.tiles:>14,} "
                f"{figures.metatiles:>12,}"
            )
            metatiles += figures.metatiles
            mean = means.get(figures.layer)
            if mean is None:
                known = False
            else:
                seconds += mean * figures.metatiles
        write(
            f"{'total':<16} {'':>4} {total:>14,} {metatiles:>12,}"
            + ("" if exact else " (tiles: an upper bound)")
        )
        write(f"{plan.chunks:,} chunks; nothing written (dry run).")
        if known and means:
            write(
                f"Estimated time with {processes} process(es), at the layers' recent render "
                f"times, if nothing is cached: {_duration(seconds / processes)}."
            )
        else:
            write("No estimate: the layers' render times are not known yet.")

    def _enqueue(self, store: JobStore, job: Job, options: dict[str, Any]) -> None:
        try:
            from ...seeding.tasks import enqueue
        except ImportError as exc:
            raise CommandError(
                f"--enqueue needs Django's task framework ({exc}): pip install "
                "'django-tilestatus[seed]' and set TASKS."
            ) from None
        numbers = store.undone(job.id, job.chunks)
        store.start(job.id)
        try:
            count = enqueue(job.id, numbers, options["queue"], options["backend"])
        except Exception as exc:  # noqa: BLE001 - any backend's error, in one line
            raise CommandError(f"Could not enqueue job {job.id}: {exc}") from None
        self.stdout.write(
            f"Enqueued {count:,} chunks of job {job.id}; follow it on the status page, "
            f"cancel it with --cancel {job.id}."
        )

    # -- running here ---------------------------------------------------------------

    def _run_here(self, store: JobStore, job: Job, options: dict[str, Any]) -> None:
        store.start(job.id)
        workers = LocalWorkers(job.id, options["processes"])
        progress = Progress(self.stdout, job.total, options["progress_every"])
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        interrupted = False
        try:
            workers.start()
            try:
                while workers.alive():
                    time.sleep(POLL)
                    current = store.get(job.id)
                    if current is not None:
                        progress.update(current)
            except (KeyboardInterrupt, TerminatedError):
                interrupted = True
                self.stderr.write("Stopping after the metatiles under way...")
                workers.stop()
                workers.join()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if workers.error is not None:
            self.stderr.write(f"A seeding worker failed: {workers.error!r}")
        final = store.get(job.id)
        progress.close(final)
        self._finish(store, job.id, final, interrupted or bool(workers.error))

    def _finish(self, store: JobStore, job_id: str, job: Job | None, interrupted: bool) -> None:
        if job is None:
            raise CommandError(f"Job {job_id} is gone from Redis (expired or deleted).")
        if job.state not in (DONE, FAILED, CANCELLED):
            store.set_state(job_id, INTERRUPTED)
            job.state = INTERRUPTED
        self.stdout.write(describe(job))
        if job.state == DONE:
            return
        if job.state == FAILED:
            raise CommandError(
                f"Job {job_id}: {job.failed:,} tiles failed; last: "
                f"{job.errors[0] if job.errors else '?'}",
                returncode=EXIT_FAILED,
            )
        if job.state == CANCELLED:
            raise CommandError(f"Job {job_id} was cancelled.", returncode=EXIT_CANCELLED)
        why = "interrupted" if interrupted else "stopped with chunks left (a worker died?)"
        raise CommandError(
            f"Job {job_id} {why}: resume it with --resume {job_id}.",
            returncode=EXIT_INTERRUPTED,
        )
