"""The status page under an incident: 100 busy processes of 32 requests, each with an 8 KB
stack snapshot. The JSON and the page stay small: a stack is sent once, and only the
first ``MAX_STACKS_SENT``; a process's others come with ``?stacks=<host>:<pid>``."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from django_tilestatus import status
from django_tilestatus.reading.report import (
    MAX_PROCESS_ROWS,
    MAX_REQUESTS_LISTED,
    MAX_STACKS_SENT,
)
from django_tilestatus.recording import inflight
from django_tilestatus.recording.inflight import Request
from django_tilestatus.storage import InFlightUpdate, RedisStore

pytestmark = pytest.mark.django_db

PROCESSES = 100
#: Most JSON and HTML sizes allowed under that load.
MAX_BYTES = 2_000_000


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> RedisStore:
    """The app's store, on fakeredis and on the real Redis (a prefix of the test's own)."""
    if request.param == "real":
        request.getfixturevalue("use_real_redis")
    return status.get_store()  # type: ignore[return-value]


def big_stack() -> list[list[Any]]:
    """A stack of ``MAX_FRAMES`` frames just under ``MAX_STACK_BYTES`` encoded."""
    frame = [
        "/srv/tiles/venv/lib/python3.11/site-packages/provider/" + "d" * 60 + ".py",
        1234,
        "render_" + "f" * 40,
        "cursor.execute(sql, params)  # " + "s" * 60,
    ]
    frames = [list(frame) for _ in range(inflight.MAX_FRAMES)]
    while len(json.dumps(frames)) > inflight.MAX_STACK_BYTES:
        frames.pop(0)
    return frames


def write_incident(store: RedisStore) -> None:
    """Every process busy with ``MAX_IN_FLIGHT`` slow requests, each with its stack,
    written as the processes' writers would."""
    now, stack = time.time(), big_stack()
    for pid in range(1000, 1000 + PROCESSES):
        entries = {}
        for thread in range(inflight.MAX_IN_FLIGHT):
            request = Request(thread, f"/osm/15/{5000 + thread}/{12000 + pid}.png", now - 60)
            request.set_phase(inflight.RENDERING)
            request.stack = stack
            entries[str(thread)] = request.encode()
        update = InFlightUpdate(set=entries, oldest=now - 60)
        store.write("tiles-busy", pid, [(now - 60, "Started /osm/15/5000/12000.png")], update)


def test_an_incident_keeps_the_json_and_the_page_small(staff: Client, store: RedisStore) -> None:
    write_incident(store)
    staff.get("/tiles/status/?format=json")  # a first read warms what is cached
    started = time.perf_counter()
    response = staff.get("/tiles/status/?format=json")
    seconds = time.perf_counter() - started
    assert response.status_code == 200
    size = len(response.content)
    data = json.loads(response.content)
    print(f"\nJSON: {size / 1e6:.2f} MB in {seconds * 1000:.0f} ms")
    assert size < MAX_BYTES
    assert len(data["processes"]) == min(PROCESSES, MAX_PROCESS_ROWS)
    # Each row lists its oldest requests and counts the rest.
    for row in data["processes"]:
        assert row["in_flight"] == inflight.MAX_IN_FLIGHT
        assert len(row["requests"]) == MAX_REQUESTS_LISTED
        assert row["requests_not_listed"] == inflight.MAX_IN_FLIGHT - MAX_REQUESTS_LISTED
    requests = [r for row in data["processes"] for r in row["requests"]]
    assert all(r["stack_taken"] for r in requests)
    sent = [r for r in requests if r["stack_text"] is not None]
    assert len(sent) == MAX_STACKS_SENT
    assert data["stacks_left_out"] == len(requests) - MAX_STACKS_SENT
    assert all("stack" not in r for r in requests)  # one representation: the text

    started = time.perf_counter()
    page = staff.get("/tiles/status/")
    seconds = time.perf_counter() - started
    print(f"HTML: {len(page.content) / 1e6:.2f} MB in {seconds * 1000:.0f} ms")
    assert page.status_code == 200 and len(page.content) < MAX_BYTES
    assert page.content.count(b'class="tilestatus-stack" data-key=') == len(requests)
    assert page.content.count(b'<li class="tilestatus-more"><a href') == PROCESSES
    assert page.content.count(b"line 1234, in render_") == MAX_STACKS_SENT * len(stack_lines())

    # The stacks left out come on demand, one process at a time.
    last = data["processes"][-1]
    started = time.perf_counter()
    one = staff.get(f"/tiles/status/?format=json&stacks={last['host']}:{last['pid']}")
    seconds = time.perf_counter() - started
    print(f"with one process's stacks: {len(one.content) / 1e6:.2f} MB in {seconds * 1000:.0f} ms")
    answer = json.loads(one.content)
    assert len(one.content) < MAX_BYTES
    [row] = [r for r in answer["processes"] if (r["host"], r["pid"]) == (last["host"], last["pid"])]
    assert len(row["requests"]) == inflight.MAX_IN_FLIGHT and row["requests_not_listed"] == 0
    assert all(r["stack_text"] and not r["stack_left_out"] for r in row["requests"])
    # The others stay as they were.
    sent = [r for p in answer["processes"] for r in p["requests"] if r["stack_text"] is not None]
    assert len(sent) == MAX_STACKS_SENT + inflight.MAX_IN_FLIGHT


def stack_lines() -> list[str]:
    return [frame[2] for frame in big_stack()]


def test_a_bad_stacks_parameter_is_refused(staff: Client) -> None:
    for value in ("", "tiles-1", "tiles-1:x", ":12", "h:" + "9" * 11):
        response = staff.get("/tiles/status/", {"format": "json", "stacks": value})
        assert response.status_code == 400, value


def test_the_page_with_a_process_s_stacks_shows_them_all(staff: Client) -> None:
    store: RedisStore = status.get_store()  # type: ignore[assignment]
    write_incident(store)
    page = staff.get("/tiles/status/", {"stacks": "tiles-busy:1099"})
    assert page.status_code == 200
    count = page.content.count(b"line 1234, in render_")
    per_stack = len(stack_lines())
    assert count == (MAX_STACKS_SENT + inflight.MAX_IN_FLIGHT) * per_stack
    assert page.content.count(b'<li class="tilestatus-more"><a href') == PROCESSES - 1
