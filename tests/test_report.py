"""One report for the three formats: states, hiding, purging, and the original text layout."""

from __future__ import annotations

import pytest

from django_tilestatus.report import (
    BUSY,
    COLOURS,
    GONE,
    IDLE,
    ReportSettings,
    build_report,
    colour_processes,
    request_state,
)
from django_tilestatus.status import Status, nice_time, pid_indent

NOW = 1_700_000_000.0
SETTINGS = ReportSettings(
    this_host="here", hide_after=600, purge_after=21600, busy_after=10, messages=250
)


def statuses(*items: tuple[str, int, float, str]) -> tuple[list[Status], list[Status]]:
    """``get_recent()``'s two lists from ``(host, pid, seconds ago, message)`` items."""
    messages = sorted(
        (Status(age, pid, text, host) for host, pid, age, text in items),
        key=lambda status: status.elapsed,
    )
    newest: dict[tuple[str, int], Status] = {}
    for status in messages:
        newest.setdefault((status.host, status.pid), status)
    return list(newest.values()), messages


def alive(pid: int, last_event: float) -> None:
    return None


def dead(pid: int, last_event: float) -> str:
    return "no longer running"


def history(*items: tuple[float, str]) -> list[Status]:
    return [Status(age, 1, text, "here") for age, text in items]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([(3, "Started /a/1/2/3.png"), (4, "Created")], (BUSY, "/a/1/2/3.png", 3)),
        (
            [
                (1, "Got cache lock in 0.001 seconds"),
                (2, "Attempted cache lock"),
                (5, "Started /a/1/2/3.png"),
            ],
            (BUSY, "/a/1/2/3.png", 5),
        ),
        (
            [(1, "Finished /a/1/2/3.png in 0.100 seconds"), (2, "Started /a/1/2/3.png")],
            (IDLE, "", 0.0),
        ),
        ([(1, "Error: boom after 0.100 seconds"), (2, "Started /a/1/2/3.png")], (IDLE, "", 0.0)),
        ([(1, "Destroyed"), (2, "Finished /a in 0.1 seconds")], (GONE, "", 0.0)),
        ([(1, "Reloaded the config"), (9, "Started /a")], (IDLE, "", 0.0)),
        ([(1, "Created")], (IDLE, "", 0.0)),
    ],
)
def test_request_state_follows_the_newest_request(
    items: list[tuple[float, str]], expected: tuple[str, str, float]
) -> None:
    assert request_state(history(*items)) == expected


def test_busy_longer_than_busy_after_is_slow_and_says_for_how_long() -> None:
    report, _ = build_report(
        *statuses(
            ("here", 1, 25.7, "Started /demo/3/1/2.png"),
            ("here", 2, 4.0, "Started /demo/3/1/1.png"),
        ),
        SETTINGS,
        alive,
        NOW,
    )
    rows = {row.pid: row for row in report.processes}
    assert rows[1].state == BUSY and rows[1].slow
    assert rows[1].state_text == "busy on /demo/3/1/2.png for 25 s"
    assert rows[2].state == BUSY and not rows[2].slow


def test_dead_local_processes_are_gone_and_other_hosts_are_never_judged_on_liveness() -> None:
    report, purge = build_report(
        *statuses(
            ("here", 1, 30, "Started /demo/1/0/0.png"),
            ("there", 1, 30, "Started /demo/1/0/0.png"),
        ),
        SETTINGS,
        dead,
        NOW,
    )
    states = {row.host: (row.state, row.state_text) for row in report.processes}
    assert states == {
        "here": (GONE, "gone while busy on /demo/1/0/0.png"),
        "there": (BUSY, "busy on /demo/1/0/0.png for 30 s"),
    }
    assert purge == []


def test_silent_processes_are_hidden_but_their_messages_stay() -> None:
    report, purge = build_report(
        *statuses(
            ("here", 1, 5, "Finished /a in 0.1 seconds"),
            ("here", 2, 700, "Finished /b in 0.1 seconds"),
        ),
        SETTINGS,
        alive,
        NOW,
    )
    assert [row.pid for row in report.processes] == [1]
    assert [line.pid for line in report.messages] == [1, 2]
    assert purge == []


def test_long_silence_purges_other_hosts_and_dead_local_processes_but_not_live_ones() -> None:
    items = statuses(
        ("there", 7, 30000, "Finished /a in 0.1 seconds"),
        ("here", 8, 30000, "Finished /b in 0.1 seconds"),
        ("here", 9, 5, "Finished /c in 0.1 seconds"),
    )
    _, purge_dead = build_report(*items, SETTINGS, dead, NOW)
    assert purge_dead == [("there", 7), ("here", 8)]
    report, purge_alive = build_report(*items, SETTINGS, alive, NOW)
    assert purge_alive == [("there", 7)]
    assert {line.pid for line in report.messages} == {8, 9}


def test_messages_are_the_newest_youngest_first_up_to_the_limit() -> None:
    items = [("here", pid, float(age), f"m{age}") for age in range(30) for pid in (age % 3,)]
    settings = ReportSettings("here", 600, 21600, 10, messages=7)
    report, _ = build_report(*statuses(*items), settings, alive, NOW)
    assert [line.message for line in report.messages] == [f"m{age}" for age in range(7)]


def test_several_hosts_are_flagged_so_pids_are_shown_with_their_host() -> None:
    one, _ = build_report(*statuses(("here", 1, 1, "x"), ("here", 2, 1, "y")), SETTINGS, alive, NOW)
    two, _ = build_report(
        *statuses(("here", 1, 1, "x"), ("there", 1, 1, "y")), SETTINGS, alive, NOW
    )
    assert not one.several_hosts and two.several_hosts


def test_text_is_the_original_layout() -> None:
    items = statuses(
        ("here", 13235, 130, "Started /osm/15/5255/12664.png"),
        ("here", 13233, 5, "Finished /osm/15/5255/12661.png in 0.776 seconds"),
        ("here", 13233, 6, "Got cache lock in 0.001 seconds"),
    )
    report, _ = build_report(*items, SETTINGS, alive, NOW)
    assert (
        report.as_text()
        == "\n".join(
            [
                "1700000000",
                "----------",
                "  1. 13233 Finished /osm/15/5255/12661.png in 0.776 seconds, moments ago",
                "  2. 13235 Started /osm/15/5255/12664.png, 2 minutes ago",
                "----------",
                " " * pid_indent(13233)
                + " 13233 Finished /osm/15/5255/12661.png in 0.776 seconds, moments ago",
                " " * pid_indent(13233) + " 13233 Got cache lock in 0.001 seconds, moments ago",
                " " * pid_indent(13235) + " 13235 Started /osm/15/5255/12664.png, 2 minutes ago",
            ]
        )
        + "\n"
    )


def test_text_lines_follow_the_original_format_strings() -> None:
    _, messages = statuses(
        *[
            ("here", pid, age, f"Started /{pid}")
            for pid, age in [(1, 3), (4242, 100), (99999, 4000), (123456, 90000)]
        ]
    )
    report, _ = build_report(messages[:1], messages, SETTINGS, alive, NOW)
    lines = report.as_text().splitlines()
    original = "%3s. %5s %s, %s ago" % (1, 1, "Started /1", nice_time(3))
    assert lines[2] == original
    assert lines[4:] == [
        " ".join(
            [" " * pid_indent(s.pid), str(s.pid), s.message + ",", nice_time(s.elapsed), "ago"]
        )
        for s in messages
    ]


def test_json_items_have_exactly_host_pid_elapsed_message() -> None:
    report, _ = build_report(*statuses(("here", 1, 2.34567, "Started /a")), SETTINGS, alive, NOW)
    data = report.as_dict()
    assert data == {
        "now": NOW,
        "processes": [{"host": "here", "pid": 1, "elapsed": 2.346, "message": "Started /a"}],
        "messages": [{"host": "here", "pid": 1, "elapsed": 2.346, "message": "Started /a"}],
    }


def test_processes_on_one_page_get_distinct_colours_in_host_pid_order() -> None:
    items = [("here", pid, 1.0, "x") for pid in (30, 4, 200)] + [("there", 1, 2.0, "y")]
    report, _ = build_report(*statuses(*items), SETTINGS, alive, NOW)
    colours = {(line.host, line.pid): line.colour for line in report.messages}
    assert colours == {("here", 4): 0, ("here", 30): 1, ("here", 200): 2, ("there", 1): 3}
    assert {(row.host, row.pid): row.colour for row in report.processes} == colours
    assert colour_processes([("h", pid) for pid in range(12)])[("h", 11)] == 11 % COLOURS
