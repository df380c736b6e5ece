"""Seeding jobs in Redis: a few keys per job, whatever the number of its tiles.

Keys, under the app's prefix and its cluster hash tag (as ``storage.redis_store``),
so every key of a site hashes to one Redis Cluster slot:

- ``<ns>:seed:jobs``: a sorted set of job ids by creation time (the newest
  ``KEEP_JOBS`` kept);
- ``<ns>:seed:job:<id>``: a hash: the job's ``spec`` (JSON: layers, zooms, area,
  options), its state, and counters updated with ``HINCRBY`` once per chunk
  (``done``, ``skipped``, ``failed``, ``chunks_done``, ``next`` for claiming);
- ``<ns>:seed:job:<id>:chunks``: a bitmap, one bit per chunk, set when the chunk is
  done: what ``--resume`` skips (65,536 chunks at most: 8 KiB);
- ``<ns>:seed:job:<id>:workers``: a hash, one field per process that worked on it
  (``host:pid`` -> when last seen, chunks and tiles), at most ``KEEP_WORKERS``;
- ``<ns>:seed:job:<id>:errors``: the last ``KEEP_ERRORS`` errors.

Every key of a job expires ``ttl`` seconds after the job last changed.

The client is the app's (``connection.get_client``); this module imports no redis:
its errors are the caller's to word.

Core module: imports the standard library only.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

PLANNED, RUNNING, DONE, CANCELLED, FAILED, INTERRUPTED = (
    "planned",
    "running",
    "done",
    "cancelled",
    "failed",
    "interrupted",
)
STATES = (PLANNED, RUNNING, DONE, CANCELLED, FAILED, INTERRUPTED)
FINISHED = (DONE, CANCELLED, FAILED)
#: Jobs listed (the page shows the newest); older ones are forgotten.
KEEP_JOBS = 20
KEEP_ERRORS = 10
KEEP_WORKERS = 64
#: A process last seen this many seconds ago no longer counts as working.
WORKING_WITHIN = 30.0
#: Default lifetime of a job's keys after its last change: a week.
TTL = 7 * 24 * 3600
#: Longest error text kept.
MAX_ERROR = 300


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    try:
        return int(_text(value))
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(_text(value))
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    seen: float
    chunks: int
    tiles: int


@dataclass
class Job:
    """A job as read back."""

    id: str
    spec: dict[str, Any]
    state: str
    total: int
    chunks: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    chunks_done: int = 0
    created: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    started_by: str = ""
    errors: list[str] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def layers(self) -> list[str]:
        return [str(layer) for layer in self.spec.get("layers", [])]

    @property
    def zooms(self) -> str:
        return f"{self.spec.get('min_zoom')}-{self.spec.get('max_zoom')}"

    def rate(self, now: float) -> float:
        """Tiles per second since it started (or until it finished)."""
        if not self.started:
            return 0.0
        end = self.finished if self.state in FINISHED and self.finished else now
        return self.processed / max(end - self.started, 1e-3)

    def eta(self, now: float) -> float | None:
        """Seconds left at the current rate, if it runs."""
        rate = self.rate(now)
        if self.state != RUNNING or rate <= 0:
            return None
        return max(self.total - self.processed, 0) / rate

    def working(self, now: float) -> list[Worker]:
        if self.state != RUNNING:
            return []
        return [w for w in self.workers if now - w.seen <= WORKING_WITHIN]

    def as_dict(self, now: float) -> dict[str, Any]:
        eta = self.eta(now)
        working = self.working(now)
        return {
            "id": self.id,
            "layers": self.layers,
            "zooms": self.zooms,
            "state": self.state,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "total": self.total,
            "percent": round(100.0 * self.processed / self.total, 1) if self.total else 100.0,
            "rate": round(self.rate(now), 2),
            "eta": None if eta is None else round(eta, 1),
            "hosts": sorted({w.host for w in working}),
            "processes": [f"{w.host}:{w.pid}" for w in working],
            "workers": [
                {"host": w.host, "pid": w.pid, "chunks": w.chunks, "tiles": w.tiles}
                for w in self.workers
            ],
            "errors": self.errors,
            "started_by": self.started_by,
            "created": round(self.created, 3),
            "enqueued": bool(self.spec.get("enqueued")),
        }


class JobStore:
    """Seeding jobs under one key prefix, on the app's Redis client."""

    def __init__(self, client: Any, prefix: str, ttl: float = TTL):
        self.client = client
        self.ttl = int(ttl)
        self._namespace = f"{prefix}:{{{prefix}}}:seed"

    def _list(self) -> str:
        return f"{self._namespace}:jobs"

    def _job(self, job_id: str) -> str:
        return f"{self._namespace}:job:{job_id}"

    def _keys(self, job_id: str) -> list[str]:
        key = self._job(job_id)
        return [key, f"{key}:chunks", f"{key}:workers", f"{key}:errors"]

    def create(
        self, spec: dict[str, Any], total: int, chunks: int, started_by: str, state: str = PLANNED
    ) -> str:
        job_id = secrets.token_hex(4)
        now = time.time()
        key = self._job(job_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(
            key,
            mapping={
                "spec": json.dumps(spec, separators=(",", ":")),
                "state": state,
                "total": total,
                "chunks": chunks,
                "created": repr(now),
                "started_by": started_by,
                "done": 0,
                "skipped": 0,
                "failed": 0,
                "chunks_done": 0,
                "next": 0,
            },
        )
        pipe.expire(key, self.ttl)
        pipe.zadd(self._list(), {job_id: now})
        pipe.zremrangebyrank(self._list(), 0, -KEEP_JOBS - 1)
        pipe.expire(self._list(), self.ttl)
        pipe.execute()
        return job_id

    def get(self, job_id: str) -> Job | None:
        key = self._job(job_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.hgetall(f"{key}:workers")
        pipe.lrange(f"{key}:errors", 0, KEEP_ERRORS - 1)
        fields, workers, errors = pipe.execute()
        if not fields:
            return None
        values = {_text(k): v for k, v in fields.items()}
        try:
            spec = json.loads(_text(values.get("spec", "{}")))
        except ValueError:
            spec = {}
        return Job(
            id=job_id,
            spec=spec if isinstance(spec, dict) else {},
            state=_text(values.get("state", PLANNED)),
            total=_int(values.get("total")),
            chunks=_int(values.get("chunks")),
            done=_int(values.get("done")),
            skipped=_int(values.get("skipped")),
            failed=_int(values.get("failed")),
            chunks_done=_int(values.get("chunks_done")),
            created=_float(values.get("created")),
            started=_float(values.get("started")),
            finished=_float(values.get("finished")),
            started_by=_text(values.get("started_by", "")),
            errors=[_text(error) for error in errors],
            workers=sorted(
                (w for w in (_worker(k, v) for k, v in workers.items()) if w is not None),
                key=lambda w: (w.host, w.pid),
            ),
        )

    def recent(self, limit: int = KEEP_JOBS) -> list[Job]:
        """The newest jobs first (those whose keys have expired are left out)."""
        ids = [_text(i) for i in self.client.zrevrange(self._list(), 0, limit - 1)]
        jobs = [self.get(job_id) for job_id in ids]
        return [job for job in jobs if job is not None]

    def state(self, job_id: str) -> str | None:
        value = self.client.hget(self._job(job_id), "state")
        return None if value is None else _text(value)

    def start(self, job_id: str) -> None:
        """The job runs (again): claiming starts from its first chunk, done ones skipped."""
        key = self._job(job_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping={"state": RUNNING, "next": 0, "started": repr(time.time())})
        pipe.hdel(key, "finished")
        pipe.execute()
        self._touch(job_id)

    def set_state(self, job_id: str, state: str) -> None:
        key = self._job(job_id)
        mapping: dict[str, str] = {"state": state}
        if state in FINISHED or state == INTERRUPTED:
            mapping["finished"] = repr(time.time())
        self.client.hset(key, mapping=mapping)
        self._touch(job_id)

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not finished; workers stop after their metatile."""
        state = self.state(job_id)
        if state is None or state in (DONE, FAILED):
            return False
        self.set_state(job_id, CANCELLED)
        return True

    def claim(self, job_id: str) -> int:
        """The next chunk number for a local worker (may be past the last, or done)."""
        return int(self.client.hincrby(self._job(job_id), "next", 1)) - 1

    def is_done(self, job_id: str, number: int) -> bool:
        return bool(self.client.getbit(f"{self._job(job_id)}:chunks", number))

    def undone(self, job_id: str, chunks: int) -> list[int]:
        """The chunk numbers not done (reads the bitmap once: 8 KiB at most)."""
        bitmap = self.client.get(f"{self._job(job_id)}:chunks") or b""
        if isinstance(bitmap, str):
            bitmap = bitmap.encode("latin-1")
        return [
            n
            for n in range(chunks)
            if n // 8 >= len(bitmap) or not (bitmap[n // 8] >> (7 - n % 8)) & 1
        ]

    def finish_chunk(
        self,
        job_id: str,
        number: int,
        counts: tuple[int, int, int],
        host: str,
        pid: int,
        errors: list[str] = (),  # type: ignore[assignment]
    ) -> Job | None:
        """Mark chunk ``number`` done with its ``(done, skipped, failed)`` counts, once
        (a chunk done twice counts once); the job is finished by the chunk that
        completes it. Returns the job as it then is."""
        key = self._job(job_id)
        already = self.client.setbit(f"{key}:chunks", number, 1)
        done, skipped, failed = counts
        pipe = self.client.pipeline(transaction=False)
        if not already:
            pipe.hincrby(key, "done", done)
            pipe.hincrby(key, "skipped", skipped)
            pipe.hincrby(key, "failed", failed)
            pipe.hincrby(key, "chunks_done", 1)
        worker = f"{host}:{pid}"
        previous = self.client.hget(f"{key}:workers", worker)
        seen_chunks, seen_tiles = _worker_counts(previous)
        pipe.hset(
            f"{key}:workers",
            worker,
            json.dumps([time.time(), seen_chunks + 1, seen_tiles + done + skipped + failed]),
        )
        for error in errors[:KEEP_ERRORS]:
            pipe.lpush(f"{key}:errors", error[:MAX_ERROR])
        if errors:
            pipe.ltrim(f"{key}:errors", 0, KEEP_ERRORS - 1)
        pipe.execute()
        self._touch(job_id)
        job = self.get(job_id)
        completes = job is not None and not already and job.chunks_done >= job.chunks
        if completes and job is not None and job.state in (RUNNING, PLANNED, INTERRUPTED):
            job.state = FAILED if job.failed else DONE
            self.set_state(job_id, job.state)
        return job

    def seen(self, job_id: str, host: str, pid: int) -> None:
        """A worker says it is at work on the job (before its first chunk)."""
        key = f"{self._job(job_id)}:workers"
        worker = f"{host}:{pid}"
        chunks, tiles = _worker_counts(self.client.hget(key, worker))
        if self.client.hlen(key) < KEEP_WORKERS or chunks or tiles:
            self.client.hset(key, worker, json.dumps([time.time(), chunks, tiles]))

    def _touch(self, job_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in self._keys(job_id):
            pipe.expire(key, self.ttl)
        pipe.expire(self._list(), self.ttl)
        pipe.execute()

    def delete(self, job_id: str) -> None:
        self.client.delete(*self._keys(job_id))
        self.client.zrem(self._list(), job_id)


def _worker_counts(value: Any) -> tuple[int, int]:
    if value is None:
        return 0, 0
    try:
        _, chunks, tiles = json.loads(_text(value))
        return int(chunks), int(tiles)
    except (TypeError, ValueError):
        return 0, 0


def _worker(name: Any, value: Any) -> Worker | None:
    host, _, pid = _text(name).rpartition(":")
    try:
        seen, chunks, tiles = json.loads(_text(value))
        return Worker(host, int(pid), float(seen), int(chunks), int(tiles))
    except (TypeError, ValueError):
        return None
