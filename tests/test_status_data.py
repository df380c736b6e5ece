"""Whatever Redis holds, the page answers: malformed entries, crowds, clocks ahead, exits.

Everything here is written straight into Redis under the app's prefix, as
another program, an older version or a bug might have written it.
"""

from __future__ import annotations

import json
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from django_tilestatus import conf, status
from django_tilestatus.reading.report import MAX_PROCESS_ROWS
from django_tilestatus.recording.vocabulary import MAX_MESSAGE_LENGTH
from django_tilestatus.storage import RedisStore

from .support.status import write_busy, write_log

pytestmark = pytest.mark.django_db

FORMATS = ("html", "json", "text")
#: A host of whose processes this one cannot judge liveness: they stay.
GOOD = "tiles-elsewhere"


def here() -> str:
    return conf.get_config().host


def strict_json(body: bytes) -> Any:
    """Parse as RFC 8259 JSON: ``NaN`` and ``Infinity`` are refused, as ``JSON.parse`` does."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(body, parse_constant=refuse)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> RedisStore:
    """The app's store, on fakeredis and on the real Redis (a prefix of the test's own)."""
    if request.param == "real":
        request.getfixturevalue("use_real_redis")
    return status.get_store()  # type: ignore[return-value]


def write_malformed(store: RedisStore) -> None:
    """Each kind of entry that once took the page down, beside a good process."""
    client, registry = store.client, store.registry_key()
    now = time.time()
    write_log(store, GOOD, 4242, (1, "Started /solid/1/0/0.png"))
    client.zadd(
        registry,
        {
            "²:somehost": now,  # "²".isdigit() is True; int("²") raises
            f"2147483648:{here()}": now,  # beyond pid_t: os.kill overflows
            "-5:somehost": now,
            "12": now,  # no host
            b"\xff\xfe:somehost": now,  # not UTF-8
        },
    )
    client.zadd(registry, {f"7:{GOOD}": now})
    client.lpush(
        store.log_key(GOOD, 7),
        "nan Started /a",
        "inf Started /b",
        "-inf Started /c",
        "no-space",
        "1e400 Started /d",
        b"\xff\xfe bad bytes",
        f"{now - 2:.6f} Finished /solid/1/0/0.png in 0.010 seconds",
    )
    client.expire(store.log_key(GOOD, 7), 600)


def test_malformed_entries_leave_every_format_up_and_are_dropped(
    staff: Client, store: RedisStore
) -> None:
    write_malformed(store)
    for fmt in FORMATS:
        response = staff.get(f"/tiles/status/?format={fmt}")
        assert response.status_code == 200, fmt
    data = strict_json(staff.get("/tiles/status/?format=json").content)
    assert {(p["host"], p["pid"]) for p in data["processes"]} == {(GOOD, 4242), (GOOD, 7)}
    assert [m["message"] for m in data["messages"] if m["pid"] == 7] == [
        "Finished /solid/1/0/0.png in 0.010 seconds"
    ]
    # The registry keeps only what names a process.
    members = set(store.client.zrange(store.registry_key(), 0, -1))
    assert members == {f"4242:{GOOD}".encode(), f"7:{GOOD}".encode()}


@pytest.mark.parametrize(
    "message",
    [
        "Got cache lock in . seconds",
        "Finished /x in . seconds",
        "Error: boom after 1.2.3 seconds",
        "Finished /x in ..5 seconds",
    ],
)
def test_numbers_that_are_only_dots_leave_every_format_and_metrics_up(
    staff: Client, store: RedisStore, message: str
) -> None:
    """A message worded like the app's but naming no number, as ``update_status`` or another
    program may store it, is shown as it is."""
    status.update_status(message)
    write_log(store, GOOD, 99, (1, message))
    for fmt in FORMATS:
        response = staff.get(f"/tiles/status/?format={fmt}")
        assert response.status_code == 200, fmt
        assert message in response.content.decode(), fmt
    assert staff.get("/tiles/metrics").status_code == 200


def test_the_python_api_skips_malformed_entries(store: RedisStore) -> None:
    write_malformed(store)
    processes, messages = status.get_recent()
    assert sorted(pid for _, pid, _ in processes) == [7, 4242]
    assert all(elapsed >= 0 for elapsed, _, _ in messages)


def test_purge_names_malformed_entries_deletes_them_and_exits_0(store: RedisStore) -> None:
    write_malformed(store)
    out = StringIO()
    call_command("tilestatus_purge", "--dry-run", stdout=out, no_color=True)
    named = [line for line in out.getvalue().splitlines() if "malformed registry entry" in line]
    assert len(named) == 5
    assert all(line.startswith("Would delete") for line in named)
    assert store.client.zcard(store.registry_key()) == 7  # a dry run deletes nothing
    out = StringIO()
    call_command("tilestatus_purge", stdout=out, no_color=True)
    assert "and 5 malformed entries" in out.getvalue().splitlines()[-1]
    assert store.client.zcard(store.registry_key()) == 2


def test_a_crowd_is_listed_up_to_the_cap_busy_first_and_counted(staff: Client) -> None:
    store = status.get_store()
    now = time.time()
    crowd = MAX_PROCESS_ROWS + 150
    pipe = store.client.pipeline(transaction=False)
    for pid in range(1000, 1000 + crowd):
        host = "web-a" if pid % 2 else "web-b"
        stamp = now - 5 - pid / 1000  # youngest first: PID 1000
        pipe.lpush(
            store.log_key(host, pid), f"{stamp:.6f} Finished /solid/1/0/0.png in 0.1 seconds"
        )
        pipe.expire(store.log_key(host, pid), 600)
        pipe.zadd(store.registry_key(), {f"{pid}:{host}": stamp})
    pipe.execute()
    # The oldest process of the crowd is stuck: it must be listed however old.
    write_log(store, "web-a", 9999, (60, "Started /solid/9/9/9.png"))
    write_busy(store, "web-a", 9999, "/solid/9/9/9.png", 60)

    data = strict_json(staff.get("/tiles/status/?format=json").content)
    listed = {(p["host"], p["pid"]) for p in data["processes"]}
    assert len(listed) == MAX_PROCESS_ROWS
    assert ("web-a", 9999) in listed
    assert sum(item["count"] for item in data["hidden"]) == crowd + 1 - MAX_PROCESS_ROWS
    assert {item["host"] for item in data["hidden"]} == {"web-a", "web-b"}
    assert data["counts"]["idle"] == crowd and data["counts"]["busy"] == 1
    elapsed = [p["elapsed"] for p in data["processes"]]
    assert elapsed == sorted(elapsed)  # listed youngest first, as ever

    html = staff.get("/tiles/status/").content.decode()
    assert 'href="?host=web-a"' in html
    only = strict_json(staff.get("/tiles/status/?format=json&host=web-b").content)
    assert {p["host"] for p in only["processes"]} == {"web-b"}
    assert {m["host"] for m in only["messages"]} == {"web-b"}
    assert only["host"] == "web-b"


def test_a_huge_message_is_cut_when_read(staff: Client) -> None:
    store = status.get_store()
    write_log(store, here(), 4242, (1, "x" * 5_000_000))
    response = staff.get("/tiles/status/?format=json")
    assert len(response.content) < 20_000
    [line] = strict_json(response.content)["messages"]
    assert line["message"] == "x" * MAX_MESSAGE_LENGTH + "..."


def test_a_clock_ahead_gives_no_negative_time_and_is_flagged(staff: Client) -> None:
    store = status.get_store()
    write_log(store, "fast-host", 1, (-120, "Started /solid/1/0/0.png"))
    write_busy(store, "fast-host", 1, "/solid/1/0/0.png", -120)
    write_log(store, here(), 2, (-1, "Started /solid/1/0/1.png"))  # within the slack
    data = strict_json(staff.get("/tiles/status/?format=json").content)
    assert data["clock_ahead"] == ["fast-host"]
    rows = {p["host"]: p for p in data["processes"]}
    assert rows["fast-host"]["state_text"] == "busy on /solid/1/0/0.png for 0 s"
    for item in data["processes"] + data["messages"]:
        assert item["elapsed"] >= 0 and "-" not in item["ago"]
    assert "clock of" in staff.get("/tiles/status/").content.decode()
    assert "-1" not in staff.get("/tiles/status/?format=text").content.decode()


def test_exited_is_not_gone(staff: Client) -> None:
    store = status.get_store()
    write_log(store, "elsewhere", 1, (30, "Finished /a in 0.1 seconds"), (20, "Destroyed"))
    write_log(store, "elsewhere", 2, (30, "Started /a"))
    write_busy(store, "elsewhere", 2, "/a", 30)
    data = strict_json(staff.get("/tiles/status/?format=json").content)
    states = {p["pid"]: (p["state"], p["state_text"]) for p in data["processes"]}
    assert states[1] == ("exited", "exited")
    assert states[2][0] == "busy"
    html = staff.get("/tiles/status/").content.decode()
    assert 'class="tilestatus-exited"' in html


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("line one\nline two", "line one\\x0aline two"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("é ok", "é ok"),
        ("y" * 600, "y" * MAX_MESSAGE_LENGTH + "..."),
    ],
)
def test_update_status_cleans_and_cuts_its_text(text: str, stored: str) -> None:
    status.update_status(text)
    _, messages = status.get_recent()
    assert [message for _, _, message in messages] == [stored]
