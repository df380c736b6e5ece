"""What a process died on is counted once, as server errors, by whoever sees it first.

A worker killed mid-request (SIGKILL, the out-of-memory killer) cannot count its own
last requests: the page, the metrics, ``tilestatus_top`` or the purge does, whichever
reads first, and only once.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from django_tilestatus import conf, runtime, status
from django_tilestatus.reading.current import current_report
from django_tilestatus.reading.deaths import Death, count_deaths, died_on
from django_tilestatus.recording.inflight import Request
from django_tilestatus.recording.recorder import active
from django_tilestatus.statistics.schema import RequestCount, ResponseSeconds
from django_tilestatus.storage import InFlightUpdate, RedisStore

from .support import wait_until
from .support.gunicorn import GunicornServer
from .support.http import request
from .support.processes import dead_pid
from .support.real_redis import REAL_REDIS_URL
from .support.status import write_log

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(request: pytest.FixtureRequest) -> RedisStore:
    return status.get_store()  # type: ignore[return-value]


def died_busy(store: RedisStore, paths: list[str], seconds: float = 4.0) -> int:
    """A process of this host that died with ``paths`` in flight; its PID."""
    pid = dead_pid()
    host = conf.get_config().host
    now = time.time()
    write_log(store, host, pid, (seconds, f"Started {paths[0]}"), (0.0, "Attempted cache lock"))
    requests = {str(i): Request(i, path, now - seconds) for i, path in enumerate(paths, 1)}
    update = InFlightUpdate(
        set={key: request.encode() for key, request in requests.items()}, oldest=now - seconds
    )
    store.write(host, pid, [], update)
    return pid


def server_errors(store: RedisStore) -> dict[str, float]:
    """The cumulative server errors per layer, and their seconds."""
    fields = store.stat_totals().fields
    found: dict[str, float] = {}
    for record, value in fields.items():
        if isinstance(record, RequestCount) and record.outcome == "server_error":
            found[record.layer] = found.get(record.layer, 0) + value
        if isinstance(record, ResponseSeconds) and record.outcome == "server_error":
            found[record.layer + " seconds"] = found.get(record.layer + " seconds", 0) + value
    return found


@pytest.mark.parametrize("store", ["fake", pytest.param("real", marks=pytest.mark.redis)])
def test_the_page_counts_a_death_once_however_often_it_is_read(
    staff: Client, store: Any, request: pytest.FixtureRequest
) -> None:
    if store == "real":
        request.getfixturevalue("use_real_redis")
    store = status.get_store()
    died_busy(store, ["/solid/3/1/1.png", "/solid/3/1/2.png"])
    for fmt in ("html", "json", "text"):
        assert staff.get(f"/tiles/status/?format={fmt}").status_code == 200
    assert staff.get("/tiles/metrics").status_code == 200
    counted = server_errors(store)
    assert counted["solid"] == 2
    # Each from its start to the process's last sign of life.
    assert counted["solid seconds"] == pytest.approx(8.0, abs=1.0)


def test_two_readers_count_a_death_once(store: RedisStore) -> None:
    pid = died_busy(store, ["/solid/1/0/0.png"])
    raw = store.in_flight_of([(conf.get_config().host, pid)])
    [(key, values)] = raw.items()
    death = Death(key[0], key[1], time.time(), values)
    writer = active()
    assert writer is not None
    runtime.get_server()  # the layers' names label what is counted
    assert count_deaths(store, [death], writer) == 1
    assert count_deaths(store, [death], writer) == 0  # claimed already
    writer.flush()
    assert server_errors(store)["solid"] == 1


def test_a_request_already_counted_at_exit_is_not_counted_again() -> None:
    counted = Request(1, "/hang/1/0/0.png", 10.0)
    counted.status = 500  # its abort was counted by the process itself
    fresh = Request(2, "/solid/1/0/0.png", 10.0)
    death = Death("h", 1, 15.0, [counted.encode(), fresh.encode(), b"junk"])
    assert [(r.path, r.status, r.seconds) for r in died_on(death)] == [
        ("/solid/1/0/0.png", 500, 5.0)
    ]


def test_purge_counts_what_a_dead_process_died_on_before_deleting_it(store: RedisStore) -> None:
    pid = died_busy(store, ["/solid/2/1/1.png"])
    out = StringIO()
    call_command("tilestatus_purge", "--dry-run", stdout=out)
    assert "counted" not in out.getvalue()  # a dry run changes nothing
    assert "solid" not in server_errors(store)
    call_command("tilestatus_purge", stdout=out)
    assert f"PID {pid}: no longer running" in out.getvalue()
    assert "counted 1 of its requests as server errors" in out.getvalue()
    assert server_errors(store)["solid"] == 1


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.timeout(120)
def test_a_worker_killed_mid_request_is_one_server_error_for_every_reader(
    use_real_redis: str, real_redis: Any, tmp_path: Any
) -> None:
    config = {
        "cache": {"name": "Test"},
        "layers": {
            "hang": {"provider": {"class": "tests.providers:Hang", "kwargs": {"seconds": 60}}}
        },
    }
    (tmp_path / "tilestache.cfg").write_text(json.dumps(config))
    env = {
        "TILESTATUS_REDIS_URL": REAL_REDIS_URL,
        "TILESTATUS_KEY_PREFIX": use_real_redis,
        "TILESTATUS_CONFIG": str(tmp_path / "tilestache.cfg"),
    }
    store = RedisStore(real_redis, prefix=use_real_redis)
    with GunicornServer(env, tmp_path / "gunicorn.log", workers=1) as server:
        [worker] = server.worker_pids()
        hung = threading.Thread(target=request, args=(server.base, "/tiles/hang/1/0/0.png"))
        hung.daemon = True
        hung.start()

        def hanging() -> bool:
            raw = store.in_flight_of([(conf.get_config().host, worker)])
            return any(b"/hang/1/0/0.png" in value for values in raw.values() for value in values)

        assert wait_until(hanging, 20)
        os.kill(worker, signal.SIGKILL)
        server.wait_for_workers(lambda pids: bool(pids) and worker not in pids)
    assert server_errors(status.get_store()).get("hang", 0) == 0  # nobody has looked yet
    report = current_report()
    [row] = [row for row in report.processes if row.pid == worker]
    assert row.state == "gone" and row.requests[0].path == "/hang/1/0/0.png"
    current_report(tiles=False)  # the metrics' read
    call_command("tilestatus_top", "--once", stdout=StringIO())
    call_command("tilestatus_purge", stdout=StringIO())
    assert server_errors(status.get_store())["hang"] == 1


def test_a_refused_claim_leaves_the_page_up_and_is_logged_once(
    staff: Client, store: RedisStore, monkeypatch: Any, caplog: Any
) -> None:
    """A read-only replica refuses the claim: the read goes on, and says so once."""
    from django_tilestatus.storage import StoreUnavailable

    def refuse(host: str, pid: int) -> bool:
        raise StoreUnavailable("Redis refused the command (ReadOnlyError: read only)")

    monkeypatch.setattr(store, "claim_death", refuse)
    died_busy(store, ["/solid/3/1/1.png"])
    with caplog.at_level("WARNING", logger="django_tilestatus.reading.current"):
        for _ in range(3):
            assert staff.get("/tiles/status/?format=json").status_code == 200
    warnings = [r for r in caplog.records if "could not count" in r.getMessage()]
    assert len(warnings) == 1
    assert "solid" not in server_errors(store)
