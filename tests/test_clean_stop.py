"""A process told to stop (SIGTERM) says ``Destroyed`` under every server that runs it.

uvicorn ends with the default SIGTERM action after its graceful shutdown, and
``runserver`` never handles SIGTERM, so neither runs ``atexit``: without the app's own
handler (``recording.termination``) their processes showed ``gone``, as if killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.storage import RedisStore

from .support import ROOT, free_port
from .support.gunicorn import GunicornServer
from .support.http import request, wait_for_answer
from .support.real_redis import REAL_REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(120)]

TILE = "/tiles/demo/3/1/2.png"


def environment(prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "0",
            "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
            "TILESTATUS_KEY_PREFIX": prefix,
        }
    )
    return env


def newest_messages(real_redis: Any, prefix: str) -> dict[int, list[str]]:
    """Each recorded process's messages, newest first."""
    logs = RedisStore(real_redis, prefix=prefix).read()
    return {log.pid: [message for _, message in log.entries] for log in logs}


def serve_then_terminate(command: list[str], port: int, prefix: str, log: Path) -> int:
    """Run ``command`` (serving on ``port``), fetch a tile, SIGTERM it, wait; its PID."""
    base = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment(prefix), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_answer(base, "/tiles/", process, 40)
        assert request(base, TILE).status == 200
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
    return process.pid


@pytest.mark.parametrize("server", ["uvicorn", "runserver"])
def test_uvicorn_and_runserver_say_destroyed_on_sigterm(
    server: str, real_redis: Any, real_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    if server == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", "example_project.asgi:application"]
        command += ["--no-access-log", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "example_project/manage.py", "runserver"]
        command += ["--noreload", f"127.0.0.1:{port}"]
    pid = serve_then_terminate(command, port, real_prefix, tmp_path / f"{server}.log")
    messages = newest_messages(real_redis, real_prefix)
    assert messages[pid][0] == "Destroyed", (messages, (tmp_path / f"{server}.log").read_text())
    assert messages[pid].count("Destroyed") == 1


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_gunicorn_workers_say_destroyed_once_when_the_server_stops(
    worker: str, real_redis: Any, real_prefix: str, tmp_path: Path
) -> None:
    env = {"TILESTATUS_REDIS_URL": REAL_REDIS_URL, "TILESTATUS_KEY_PREFIX": real_prefix}
    options = ["-k", worker, "--threads", "2"] if worker == "gthread" else []
    with GunicornServer(env, tmp_path / "gunicorn.log", workers=2, options=options) as server:
        for _ in range(4):
            assert request(server.base, TILE).status == 200
        workers = server.worker_pids()
    messages = newest_messages(real_redis, real_prefix)
    served = [pid for pid in workers if pid in messages]
    assert served, messages
    for pid in served:
        assert messages[pid][0] == "Destroyed", messages[pid]
        assert messages[pid].count("Destroyed") == 1
