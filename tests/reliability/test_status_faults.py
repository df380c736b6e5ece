"""The status page and tilestatus_purge when Redis fails, workers die and hosts share Redis.

Written against the public contract; they need the full status page and the
purge command.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from django_tilestatus.storage import RedisStore

from ..support import wait_until
from ..support.http import request
from ..support.status import KEEP

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.django_db,
    pytest.mark.timeout(150),
]

FORMATS = ["", "?format=json", "?format=text"]
SLOW_PATH = "/slow/9/1/1.png"


@pytest.fixture
def staff() -> Client:
    client = Client()
    user = get_user_model().objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    client.force_login(user)
    return client


def status(client: Client, fmt: str = "") -> Any:
    return client.get(reverse("tilestatus:status") + fmt)


def registered(redis_server: Any, prefix: str) -> set[tuple[str, int]]:
    client = redis_server.client()
    return {
        (host, pid) for host, pid, _ in RedisStore(client, prefix, keep=KEEP).registry().entries
    }


def unused_pid_from(start: int) -> int:
    """A PID no process has here, at or above ``start``."""
    pid = start
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def process_start(pid: int) -> float:
    """Unix time ``pid`` started (Linux /proc: field 22 of its stat, after boot)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def serve_until_every_worker_recorded(server: Any, redis_server: Any, prefix: str) -> set[int]:
    """Concurrent requests until each worker, a newly booted one too, has recorded."""

    def recorded() -> set[int]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(
                pool.map(
                    lambda i: request(server.base, f"/tiles/demo/3/{i % 8}/{i // 8}.png"), range(16)
                )
            )
        assert all(answer.ok for answer in answers)
        workers = server.worker_pids()
        time.sleep(0.2)  # one writer round: it sends every 0.2 s (the recorder's INTERVAL)
        pids = {pid for _, pid in registered(redis_server, prefix)}
        return workers if workers <= pids else set()

    workers = wait_until(recorded, seconds=20)
    assert workers, "a worker never recorded a request"
    return workers


def named(pid: int, output: str) -> bool:
    """Whether the purge output has a line about ``pid`` (not a number that contains it)."""
    return re.search(rf"\bPID {pid}\b", output) is not None


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("tilestatus_purge", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("fault", ["kill", "pause"])
def test_the_page_answers_503_while_redis_is_down_or_hung(
    fault: str, staff: Client, redis_server: Any, app_on_redis: str, figures: dict
) -> None:
    Client().get("/tiles/solid/1/0/0.png")
    assert all(status(staff, fmt).status_code == 200 for fmt in FORMATS)
    getattr(redis_server, fault)()
    slowest = 0.0
    for fmt in FORMATS:
        start = time.monotonic()
        response = status(staff, fmt)
        slowest = max(slowest, time.monotonic() - start)
        assert response.status_code == 503
        assert b"Redis" in response.content
        if fmt:  # JSON and text: a short explanation, nothing else
            assert len(response.content) < 1000, response.content
        assert b"Traceback" not in response.content
        assert "no-store" in response.get("Cache-Control", "") or "no-cache" in response.get(
            "Cache-Control", ""
        )
    # Tiles are served meanwhile, and the page comes back with Redis.
    assert Client().get("/tiles/solid/1/0/1.png").status_code == 200
    if fault == "pause":
        redis_server.resume()
    else:
        redis_server.restart()
    assert wait_until(lambda: status(staff, "?format=json").status_code == 200, seconds=10)
    figures.update(fault=fault, slowest_503_s=round(slowest, 3))


def test_a_killed_worker_is_shown_gone_and_purged_while_live_workers_stay(
    start_server, staff: Client, redis_server: Any, app_on_redis: str, figures: dict
) -> None:
    server = start_server(workers=2)
    workers = server.worker_pids()
    threading.Thread(
        target=request,
        args=(server.base, "/tiles" + SLOW_PATH),
        kwargs={"timeout": 60},
        daemon=True,
    ).start()

    def busy() -> int | None:
        data = json.loads(status(staff, "?format=json").content)
        found = [p["pid"] for p in data["processes"] if p["message"] == f"Started {SLOW_PATH}"]
        return found[0] if found else None

    victim = wait_until(busy, seconds=15)
    assert victim in workers
    os.kill(victim, signal.SIGKILL)
    replaced = server.wait_for_workers(lambda pids: len(pids) == 2 and victim not in pids)
    live = serve_until_every_worker_recorded(server, redis_server, app_on_redis)
    assert victim in {pid for _, pid in registered(redis_server, app_on_redis)}

    data = json.loads(status(staff, "?format=json").content)
    last = {p["pid"]: p["message"] for p in data["processes"]}
    assert last[victim] == f"Started {SLOW_PATH}"
    html = status(staff).content.decode()
    rows = [row for row in re.split(r"<tr[\s>]", html) if re.search(rf"\b{victim}\b", row)]
    assert rows and "gone" in rows[0].lower(), rows[:1]
    for pid in live:
        row = next(r for r in re.split(r"<tr[\s>]", html) if re.search(rf"\b{pid}\b", r))
        assert "gone" not in row.lower()

    before = registered(redis_server, app_on_redis)
    dry = purge("--dry-run")
    assert named(victim, dry) and not any(named(pid, dry) for pid in live)
    assert registered(redis_server, app_on_redis) == before
    done = purge()
    assert named(victim, done)
    after = {pid for _, pid in registered(redis_server, app_on_redis)}
    assert victim not in after and live <= after
    figures.update(killed=victim, replaced_by=sorted(replaced - workers), purge_output=done.strip())


def test_purge_on_one_host_keeps_another_hosts_processes_on_liveness_grounds(
    start_server, settings: Any, redis_server: Any, app_on_redis: str, figures: dict
) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "HOST": "tiles-east"}
    east = start_server(name="east", env={"TILESTATUS_HOST": "tiles-east"})
    west = start_server(name="west", env={"TILESTATUS_HOST": "tiles-west"})
    for server in (east, west):
        serve_until_every_worker_recorded(server, redis_server, app_on_redis)
    # A live local process silent for long: PID 1, which started before its "last event".
    silent_for = min(120.0, time.time() - process_start(1) - 5)
    older_than = 60.0 if silent_for >= 120 else max(0.5, silent_for / 2)
    store = RedisStore(redis_server.client(), app_on_redis, keep=KEEP)
    now = time.time()
    west_silent, west_old, east_dead = (
        unused_pid_from(900_001),
        unused_pid_from(910_001),
        unused_pid_from(920_001),
    )
    store.write("tiles-west", west_silent, [(now, "Started /demo/1/0/0.png")])
    store.write("tiles-west", west_old, [(now - 2 * older_than, "Started /demo/1/0/0.png")])
    store.write("tiles-east", east_dead, [(now, "Started /demo/1/0/0.png")])
    store.write("tiles-east", 1, [(now - silent_for, "Started /demo/1/0/0.png")])
    live = {("tiles-east", pid) for pid in east.worker_pids()} | {
        ("tiles-west", pid) for pid in west.worker_pids()
    }
    assert wait_until(lambda: registered(redis_server, app_on_redis) >= live, seconds=15)

    output = purge("--older-than", str(older_than))
    left = registered(redis_server, app_on_redis)
    assert ("tiles-west", west_silent) in left  # no such PID here means nothing for another host
    assert ("tiles-west", west_old) not in left  # silent past --older-than
    assert ("tiles-east", east_dead) not in left  # no such process on this host
    assert ("tiles-east", 1) in left  # alive here, however long silent
    assert live <= left
    figures.update(purge_output=output.strip(), kept=sorted(map(list, left)))
