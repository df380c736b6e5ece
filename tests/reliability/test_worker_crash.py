"""A worker SIGKILLed mid-request: gunicorn replaces it, its last Started stays readable."""

from __future__ import annotations

import os
import signal
import socket
import threading

import pytest

from django_tilestatus.status import get_recent

from ..support import wait_until
from ..support.example_project import is_demo_tile
from ..support.http import request

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

SLOW_PATH = "/slow/7/21/42.png"


def test_a_killed_worker_is_replaced_and_its_last_started_stays_visible(
    start_server, app_on_redis, figures
) -> None:
    server = start_server(workers=2)
    workers = server.worker_pids()
    answers = []
    client = threading.Thread(
        target=lambda: answers.append(request(server.base, "/tiles" + SLOW_PATH, timeout=60)),
        daemon=True,
    )
    client.start()

    def busy_worker() -> int | None:
        processes, _ = get_recent()
        busy = [s.pid for s in processes if s.message == f"Started {SLOW_PATH}"]
        return busy[0] if busy else None

    victim = wait_until(busy_worker, seconds=15)
    assert victim in workers, (victim, workers)
    os.kill(victim, signal.SIGKILL)
    client.join(15)
    assert answers and answers[0].status != 200, "the killed request cannot have been answered"

    replaced = server.wait_for_workers(lambda pids: len(pids) == 2 and victim not in pids)
    assert len(replaced) == 2 and victim not in replaced, replaced
    assert replaced & workers == workers - {victim}  # the other worker was left alone

    after = request(server.base, "/tiles/demo/3/1/2.png", timeout=10)
    assert is_demo_tile(after, 3, 1, 2)

    processes, messages = get_recent()
    dead = [s for s in processes if s.pid == victim]
    assert [s.message for s in dead] == [f"Started {SLOW_PATH}"]
    assert dead[0].host == socket.gethostname()
    assert not any(s.pid == victim and s.message == "Destroyed" for s in messages)
    figures.update(
        faults="SIGKILL of the worker busy on a 30 s tile",
        killed_request=answers[0].error or answers[0].status,
        workers_before=sorted(workers),
        workers_after=sorted(replaced),
        last_message_of_killed_worker=dead[0].message,
    )
