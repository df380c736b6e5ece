"""A seeding chunk as a task of Django's task framework (``--enqueue``).

``django.tasks`` on Django 6.0 and newer, the ``django-tasks`` backport before
(the ``seed`` extra installs it, with ``django-tasks-rq``). Any backend the site
configures in ``TASKS`` runs the chunks: with ``django_tasks_rq.RQBackend``, RQ
workers (``manage.py rqworker --job-class django_tasks_rq.Job``). Imported only
to enqueue and by the workers, as the decorator checks the backend.

On Django 6.x ``django.tasks.task`` builds the task with the class of the backend it
is sent to (``task_class``), so the backport's backends, ``django_tasks_rq.RQBackend``
among them, get the backport's ``Task``; and ``django_tasks_rq.Job`` runs tasks of
either framework. One decorator serves both.
"""

from __future__ import annotations

from typing import Any

try:
    from django.tasks import task as _task  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Django < 6.0: the backport
    from django_tasks import task as _task  # type: ignore[import-not-found,no-redef,unused-ignore]


def _first_queue() -> str:
    """The default backend's first queue when it has none named "default" (the task
    framework checks the queue as the task is defined; RQ's queues have names)."""
    from django.conf import settings

    backend = (getattr(settings, "TASKS", None) or {}).get("default") or {}
    queues = list(backend.get("QUEUES") or [])
    return queues[0] if queues and "default" not in queues else "default"


@_task(queue_name=_first_queue())  # type: ignore[untyped-decorator,unused-ignore]
def seed_chunk(job_id: str, number: int) -> str:
    """Do chunk ``number`` of seeding job ``job_id`` (skipped if done or cancelled)."""
    from .running import run_chunk

    return run_chunk(job_id, number)


def enqueue(job_id: str, numbers: list[int], queue: str | None, backend: str | None) -> int:
    """Enqueue one task per chunk number; how many were enqueued."""
    options: dict[str, Any] = {}
    if backend:
        options["backend"] = backend
    if queue:
        options["queue_name"] = queue
    chosen: Any = seed_chunk.using(**options) if options else seed_chunk
    for number in numbers:
        chosen.enqueue(job_id, number)
    return len(numbers)
