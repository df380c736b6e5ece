"""The example project under gunicorn with two workers, recording into a real Redis."""

from __future__ import annotations

import random
import shutil
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from django_tilestatus.store import StatusStore

from .conftest import REAL_REDIS_URL
from .servers import ROOT, gunicorn

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

ZOOM = 20  # tiles nobody else asks for, so each one is rendered (cold)
KEEP = 20


def fetch(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def raw_head(base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """HEAD over a plain socket, read to the end, so a body sent by mistake is seen."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def finishing_pids(logs: list[Any]) -> set[int]:
    return {log.pid for log in logs if any(m.startswith("Finished /demo/") for _, m in log.entries)}


def wait_for_finished(store: StatusStore, count: int, workers: int) -> list[Any]:
    """The logs, once ``workers`` processes have recorded ``count`` Finished in all.

    The workers' writers send their events a moment after each answer: poll
    for what the test asserts, with a deadline, rather than read once.
    """
    deadline = time.monotonic() + 30
    while True:
        logs = store.read()
        done = sum(1 for log in logs for _, m in log.entries if m.startswith("Finished "))
        if done >= count and len(finishing_pids(logs)) >= workers:
            return logs
        if time.monotonic() > deadline:
            return logs
        time.sleep(0.1)


def test_two_workers_serve_and_record(real_redis: Any, real_prefix: str, tmp_path: Any) -> None:
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": real_prefix,
        "DJANGO_DEBUG": "0",
    }
    xs = random.sample(range(2**ZOOM), 40)
    paths = [f"/tiles/demo/{ZOOM}/{x}/{x % 1000}.png" for x in xs]
    try:
        with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as base:
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda p: fetch(base + p), paths))
            assert all(
                status == 200 and kind == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
                for status, kind, body in answers
            )
            assert fetch(base + "/tiles/demo/preview.html")[0] == 200
            assert fetch(base + "/tiles/nowhere/1/0/0.png")[0] == 404
            assert fetch(base + "/tiles/demo/zz/0/0.png")[0] == 400
            assert fetch(base + "/tiles/favicon.ico")[0] == 404
            assert fetch(base + "/tiles/demo/1/0/0.png", method="POST")[0] == 405
            status, headers, extra = raw_head(base, "/tiles/demo/1/0/0.png")
            assert status == 200 and int(headers["Content-Length"]) > 0 and extra == b""

            store = StatusStore(real_redis, prefix=real_prefix, keep=KEEP)
            logs = wait_for_finished(store, count=KEEP, workers=2)
    finally:
        shutil.rmtree(
            ROOT / "example_project" / "var" / "tiles" / "demo" / str(ZOOM), ignore_errors=True
        )

    finishing = finishing_pids(logs)
    assert len(finishing) == 2, f"Finished events from {finishing}"
    for log in logs:
        assert real_redis.llen(store.log_key(log.host, log.pid)) <= KEEP
        assert real_redis.ttl(store.log_key(log.host, log.pid)) > 0
        chronological = [m for _, m in reversed(log.entries)]
        open_path = None
        for message in chronological:
            if message.startswith("Started "):
                open_path = message.removeprefix("Started ")
            elif message.startswith("Finished "):
                path = message.removeprefix("Finished ").rsplit(" in ", 1)[0]
                # The oldest kept Finished may have lost its Started to the KEEP window.
                assert open_path in (path, None), chronological
                open_path = None
    assert real_redis.ttl(store.registry_key()) > 0
