"""Seeding with real processes on the real Redis: ``--processes 2``, a killed job resumed,
and ``--enqueue`` run by two RQ workers; each on the example project with a TileStache
config, a Disk cache, a key prefix and a queue of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.seeding.jobs import DONE, JobStore

from .support import ROOT, wait_until
from .support.real_redis import REAL_REDIS_URL

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.timeout(300)]

ZOOMS_0_6 = 5461
#: The smaller job of the resume and queue tests (22 chunks): what they show needs no more.
ZOOMS_0_5 = 1365


@pytest.fixture
def site(tmp_path: Path, real_prefix: str, real_redis: Any) -> dict[str, Any]:
    log = tmp_path / "renders.log"
    log.touch()
    config = {
        "cache": {"name": "Disk", "path": str(tmp_path / "tiles"), "umask": "0022"},
        "layers": {
            "demo": {
                "provider": {
                    "class": "tests.providers:Counting",
                    "kwargs": {"log": str(log), "seconds": 0.002},
                }
            }
        },
    }
    path = tmp_path / "tilestache.cfg"
    path.write_text(json.dumps(config))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "TILESTATUS_CONFIG": str(path),
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "TILESTATUS_TASK_QUEUE": f"{real_prefix}-queue",
        "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }
    return {
        "env": env,
        "log": log,
        "tiles": tmp_path / "tiles",
        "store": JobStore(real_redis, real_prefix),
        "prefix": real_prefix,
    }


def manage(site: dict[str, Any], *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "example_project" / "manage.py"), *args],
        env=kwargs.pop("env", site["env"]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def renders(site: dict[str, Any]) -> Counter[str]:
    return Counter(site["log"].read_text().split("\n")[:-1])


def tile_files(site: dict[str, Any]) -> int:
    return sum(1 for _ in site["tiles"].rglob("*.png"))


def job_id_of(site: dict[str, Any]) -> str:
    wait_until(lambda: site["store"].recent(), 30)
    return str(site["store"].recent()[0].id)


def test_two_processes_write_the_5461_tiles_once_each(site: dict[str, Any]) -> None:
    seeding = manage(site, "tilestatus_seed", "demo", "--zooms", "0-6", "--processes", "2")
    output, _ = seeding.communicate(timeout=240)
    assert seeding.returncode == 0, output
    assert tile_files(site) == ZOOMS_0_6
    counted = renders(site)
    assert len(counted) == ZOOMS_0_6 and set(counted.values()) == {1}
    job = site["store"].recent()[0]
    assert job.state == DONE and job.done == ZOOMS_0_6
    assert len(job.workers) == 2 and all(w.chunks > 0 for w in job.workers)
    # The command renders too: one spawned process beside it, not two.
    assert seeding.pid in {worker.pid for worker in job.workers}


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_an_interrupted_job_resumes_and_renders_no_tile_twice(
    site: dict[str, Any], how: str
) -> None:
    seeding = manage(site, "tilestatus_seed", "demo", "--zooms", "0-5", "--processes", "2")
    job_id = job_id_of(site)
    store = site["store"]
    wait_until(lambda: (job := store.get(job_id)) is not None and job.chunks_done >= 4, 120)
    os.killpg(seeding.pid, getattr(signal, how))
    output, _ = seeding.communicate(timeout=60)
    job = store.get(job_id)
    assert job is not None and job.chunks_done < job.chunks
    if how == "SIGINT":
        assert seeding.returncode == 5, output
        assert job.state == "interrupted"
    before = renders(site)
    resumed = manage(site, "tilestatus_seed", "--resume", job_id, "--processes", "2")
    output, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, output
    assert tile_files(site) == ZOOMS_0_5
    counted = renders(site)
    assert len(counted) == ZOOMS_0_5
    twice = [tile for tile, times in counted.items() if times > 1]
    if how == "SIGINT":
        assert twice == []  # stopped between metatiles
    else:
        # A SIGKILL can only cut the metatile each process was drawing.
        assert len(twice) <= 2 and all(before[tile] == 1 for tile in twice)
    job = store.get(job_id)
    assert job is not None and job.state == DONE and job.processed == ZOOMS_0_5


@pytest.mark.django_db
def test_enqueued_chunks_are_rendered_by_two_rq_workers(
    site: dict[str, Any], settings: Any, admin_client: Any
) -> None:
    env = {**site["env"], "TILESTATUS_TASK_BACKEND": "rq"}
    enqueue = manage(site, "tilestatus_seed", "demo", "--zooms", "0-5", "--enqueue", env=env)
    output, _ = enqueue.communicate(timeout=120)
    assert enqueue.returncode == 0, output
    job_id = job_id_of(site)
    queue = env["TILESTATUS_TASK_QUEUE"]
    worker_args = (
        "rqworker",
        queue,
        "--job-class",
        "django_tasks_rq.Job",
        "--worker-class",
        "rq.worker.SimpleWorker",
        "--burst",
    )
    workers = [manage(site, *worker_args, env=env) for _ in range(2)]
    store = site["store"]
    try:
        settings.TILESTATUS = {
            **settings.TILESTATUS,
            "REDIS_URL": REAL_REDIS_URL,
            "KEY_PREFIX": site["prefix"],
        }
        seen: set[str] = set()

        def both_seen() -> bool:
            answer = admin_client.get("/tiles/status/", {"format": "json"})
            for job in answer.json()["seeding"]:
                if job["id"] == job_id:
                    seen.update(job["processes"])
            return len(seen) >= 2

        wait_until(both_seen, 120)
        # Done when its last chunk is; not by the workers' exit, which RQ can hold up
        # for a minute after a short burst (its pub/sub thread's wait).
        wait_until(lambda: (job := store.get(job_id)) is not None and job.state == DONE, 240)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate(timeout=30)
        site["store"].client.delete(f"rq:queue:{queue}")
    job = store.get(job_id)
    assert job is not None and job.state == DONE and job.done == ZOOMS_0_5
    assert len(job.workers) == 2 and all(w.chunks > 0 for w in job.workers)
    assert len(seen) == 2
    counted = renders(site)
    assert len(counted) == ZOOMS_0_5 and set(counted.values()) == {1}
