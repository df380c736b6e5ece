#!/bin/sh
# Start a worker of the example project's task backend, which renders the chunks of
# `manage.py tilestatus_seed --enqueue` jobs. Run several, on as many hosts as you like.
#
#   TILESTATUS_TASK_BACKEND=rq TILESTATUS_REDIS_URL=redis://127.0.0.1:6379/0 ./scripts/seed-worker.sh
#
# For `rq` (RQ on TILESTATUS_REDIS_URL): django-rq's worker with django-tasks-rq's job
# class, on the queue TILESTATUS_TASK_QUEUE (default tilestatus-seed). RQ's
# SimpleWorker runs each chunk in the worker process itself (no fork per chunk), so a
# worker loads the layers once and shows on the status page as one process.
# Extra arguments go to rqworker (e.g. --burst: stop when the queue is empty).
# The `immediate` backend (the default) has no worker: chunks run as they are enqueued.
set -eu
EXTRAS=example,seed
. "$(dirname "$0")/_setup.sh"
cd "$ROOT"
BACKEND=${TILESTATUS_TASK_BACKEND:-immediate}
QUEUE=${TILESTATUS_TASK_QUEUE:-tilestatus-seed}
case $BACKEND in
    rq)
        if [ -z "${TILESTATUS_REDIS_URL:-}" ]; then
            echo "seed-worker.sh: set TILESTATUS_REDIS_URL to the Redis the site records into" >&2
            exit 2
        fi
        exec "$VENV/bin/python" example_project/manage.py rqworker "$QUEUE" \
            --job-class django_tasks_rq.Job --worker-class rq.worker.SimpleWorker "$@" ;;
    immediate)
        echo "seed-worker.sh: the immediate backend runs chunks as they are enqueued; no worker needed" >&2
        exit 0 ;;
    *)
        echo "seed-worker.sh: unknown TILESTATUS_TASK_BACKEND '$BACKEND' (immediate or rq)" >&2
        exit 2 ;;
esac
