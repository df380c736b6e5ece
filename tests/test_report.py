"""One report for the three formats: states, hiding, purging, and the original text layout."""

from __future__ import annotations

from dataclasses import replace

from django_tilestatus.reading.liveness import DeathPolicy
from django_tilestatus.reading.report import (
    BUSY,
    COLOURS,
    EXITED,
    GONE,
    IDLE,
    Report,
    ReportSettings,
    build_report,
    colour_processes,
    pid_indent,
)
from django_tilestatus.recording.inflight import Request
from django_tilestatus.recording.vocabulary import nice_time
from django_tilestatus.storage import Head, ProcessLog, Snapshot

NOW = 1_700_000_000.0
SETTINGS = ReportSettings(
    this_host="here", hide_after=600, purge_after=21600, busy_after=10, messages=250
)


def statuses(
    *items: tuple[str, int, float, str], busy: tuple[tuple[str, int, float, str], ...] = ()
) -> Snapshot:
    """A store read of ``(host, pid, seconds ago, message)`` items, as the store returns it,
    with the ``busy`` requests ``(host, pid, seconds running, path)`` in flight."""
    logs: dict[tuple[str, int], list[tuple[float, str]]] = {}
    for host, pid, age, text in sorted(items, key=lambda item: item[2]):
        logs.setdefault((host, pid), []).append((NOW - age, text))
    processes = [
        ProcessLog(host, pid, entries[0][0], entries) for (host, pid), entries in logs.items()
    ]
    in_flight: dict[tuple[str, int], list[str]] = {}
    for thread, (host, pid, running, path) in enumerate(busy):
        request = Request(thread, path, NOW - running)
        request.set_phase("render")
        request.since = NOW - running / 2
        in_flight.setdefault((host, pid), []).append(request.encode())
    return Snapshot(NOW, processes, in_flight=in_flight, busy_total=len(in_flight))


def alive(pid: int, last_event: float) -> None:
    return None


def dead(pid: int, last_event: float) -> str:
    return "no longer running"


def report_of(
    snapshot: Snapshot, liveness: object, settings: ReportSettings = SETTINGS
) -> tuple[Report, list[tuple[str, int]]]:
    """``build_report`` with the page's policy and the given liveness."""
    policy = DeathPolicy(
        settings.this_host,
        settings.purge_after,
        settings.purge_after,
        liveness,  # type: ignore[arg-type]
    )
    return build_report(snapshot, settings, policy)


def history(*items: tuple[float, str]) -> list[tuple[float, str]]:
    return [(NOW - age, text) for age, text in items]


def test_busy_comes_from_requests_in_flight_not_from_the_newest_message() -> None:
    report, _ = report_of(
        statuses(
            ("here", 1, 3, "Started /a/1/2/3.png"),
            ("here", 2, 3, "Finished /b/1/2/3.png in 0.1 seconds"),
            ("here", 3, 1, "Destroyed"),
            busy=(("here", 2, 20, "/b/9/9/9.png"),),
        ),
        alive,
    )
    rows = {row.pid: row for row in report.processes}
    assert rows[1].state == IDLE  # its Started was not recorded in flight: it has ended
    assert rows[2].state == BUSY and rows[2].busy_path == "/b/9/9/9.png"
    assert rows[3].state == EXITED


def test_several_requests_of_one_process_are_each_listed_with_their_phase() -> None:
    report, _ = report_of(
        statuses(
            ("here", 1, 1, "Started /a/1/0/0.png"),
            busy=(("here", 1, 12, "/a/1/0/0.png"), ("here", 1, 4, "/a/2/0/0.png")),
        ),
        alive,
    )
    [row] = report.processes
    assert row.state == BUSY and row.state_text == "busy with 2 requests"
    assert [(r.path, r.slow) for r in row.requests] == [
        ("/a/1/0/0.png", True),
        ("/a/2/0/0.png", False),
    ]
    assert row.requests[0].text == "/a/1/0/0.png, rendering for 6 s, running 12 s"
    assert row.slow


def test_busy_longer_than_busy_after_is_slow_and_says_for_how_long() -> None:
    report, _ = report_of(
        statuses(
            ("here", 1, 25.7, "Started /demo/3/1/2.png"),
            ("here", 2, 4.0, "Started /demo/3/1/1.png"),
            busy=(("here", 1, 25.7, "/demo/3/1/2.png"), ("here", 2, 4.0, "/demo/3/1/1.png")),
        ),
        alive,
    )
    rows = {row.pid: row for row in report.processes}
    assert rows[1].state == BUSY and rows[1].slow
    assert rows[1].state_text == "busy on /demo/3/1/2.png for 25 s"
    assert rows[2].state == BUSY and not rows[2].slow


def test_dead_local_processes_are_gone_and_other_hosts_are_never_judged_on_liveness() -> None:
    report, purge = report_of(
        statuses(
            ("here", 1, 30, "Started /demo/1/0/0.png"),
            ("there", 1, 30, "Started /demo/1/0/0.png"),
            busy=(("here", 1, 30, "/demo/1/0/0.png"), ("there", 1, 30, "/demo/1/0/0.png")),
        ),
        dead,
    )
    states = {row.host: (row.state, row.state_text) for row in report.processes}
    assert states == {
        "here": (GONE, "gone while busy on /demo/1/0/0.png"),
        "there": (BUSY, "busy on /demo/1/0/0.png for 30 s"),
    }
    assert purge == []


def test_silent_processes_are_hidden_but_their_messages_stay() -> None:
    report, purge = report_of(
        statuses(
            ("here", 1, 5, "Finished /a in 0.1 seconds"),
            ("here", 2, 700, "Finished /b in 0.1 seconds"),
        ),
        alive,
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
    _, purge_dead = report_of(items, dead)
    assert sorted(purge_dead) == [("here", 8), ("there", 7)]
    report, purge_alive = report_of(items, alive)
    assert purge_alive == [("there", 7)]
    assert {line.pid for line in report.messages} == {8, 9}


def test_messages_are_the_newest_youngest_first_up_to_the_limit() -> None:
    items = [("here", pid, float(age), f"m{age}") for age in range(30) for pid in (age % 3,)]
    settings = ReportSettings("here", 600, 21600, 10, messages=7)
    report, _ = report_of(statuses(*items), alive, settings)
    assert [line.message for line in report.messages] == [f"m{age}" for age in range(7)]


def test_several_hosts_are_flagged_so_pids_are_shown_with_their_host() -> None:
    one, _ = report_of(statuses(("here", 1, 1, "x"), ("here", 2, 1, "y")), alive)
    two, _ = report_of(statuses(("here", 1, 1, "x"), ("there", 1, 1, "y")), alive)
    assert not one.several_hosts and two.several_hosts


def test_text_is_the_original_layout() -> None:
    items = statuses(
        ("here", 13235, 130, "Started /osm/15/5255/12664.png"),
        ("here", 13233, 5, "Finished /osm/15/5255/12661.png in 0.776 seconds"),
        ("here", 13233, 6, "Got cache lock in 0.001 seconds"),
    )
    report, _ = report_of(items, alive)
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
    items = [
        ("here", pid, age, f"Started /{pid}")
        for pid, age in [(1, 3), (4242, 100), (99999, 4000), (123456, 90000)]
    ]
    settings = ReportSettings("here", 50, 21600, 10, messages=250)  # one process listed
    report, _ = report_of(statuses(*items), alive, settings)
    lines = report.as_text().splitlines()
    original = "%3s. %5s %s, %s ago" % (1, 1, "Started /1", nice_time(3))
    assert lines[2] == original
    assert lines[4:] == [
        " ".join([" " * pid_indent(pid), str(pid), text + ",", nice_time(age), "ago"])
        for _, pid, age, text in items
    ]


def test_json_items_carry_what_the_page_shows_beside_host_pid_elapsed_message() -> None:
    report, _ = report_of(
        statuses(("here", 1, 2.34567, "Started /a"), busy=(("here", 1, 2.34567, "/a"),)), alive
    )
    data = report.as_dict()
    line = {
        "host": "here",
        "pid": 1,
        "elapsed": 2.346,
        "message": "Started /a",
        "colour": 0,
        "indent": pid_indent(1),
        "ago": "moments ago",
    }
    assert data == {
        "now": NOW,
        "read_at": "22:13:20 UTC",
        "read_at_iso": "2023-11-14T22:13:20+00:00",
        "host": None,
        "several_hosts": False,
        "counts": {BUSY: 1, IDLE: 0, GONE: 0, EXITED: 0},
        "busy_total": 1,
        "processes": [
            {
                **line,
                "last_event": round(NOW - 2.34567, 6),
                "last_seen": round(NOW - 2.34567, 6),
                "state": BUSY,
                "state_text": "busy on /a for 2 s",
                "slow": False,
                "in_flight": 1,
                "requests": [
                    {
                        "path": "/a",
                        "thread": "",
                        "text": "/a, rendering for 1 s, running 2 s",
                        "running_for": 2.346,
                        "phase": "render",
                        "phase_text": "rendering for 1 s",
                        "lock": None,
                        "slow": False,
                        "gone": False,
                        "stack_taken": False,
                        "stack_left_out": False,
                        "stack_text": None,
                    }
                ],
                "requests_not_listed": 0,
                "served": None,
                "failed": None,
                "busy_path": "/a",
                "busy_for": 2.346,
                "stacks_left_out": 0,
                "lock_waiters": 0,
            }
        ],
        "hidden": [],
        "clock_ahead": [],
        "messages": [line],
        "tiles": None,  # set by the view, from the statistics (tile_stats)
        "skipped": 0,
        "skipped_text": "",
        "stacks_left_out": 0,
    }


def test_processes_on_one_page_get_distinct_colours_in_host_pid_order() -> None:
    items = [("here", pid, 1.0, "x") for pid in (30, 4, 200)] + [("there", 1, 2.0, "y")]
    report, _ = report_of(statuses(*items), alive)
    colours = {(line.host, line.pid): line.colour for line in report.messages}
    assert colours == {("here", 4): 0, ("here", 30): 1, ("here", 200): 2, ("there", 1): 3}
    assert {(row.host, row.pid): row.colour for row in report.processes} == colours
    assert colour_processes([("h", pid) for pid in range(12)])[("h", 11)] == 11 % COLOURS


def test_a_listed_process_whose_newest_message_was_read_apart_says_if_it_exited() -> None:
    snapshot = Snapshot(
        NOW,
        [ProcessLog("there", 1, NOW - 5), ProcessLog("there", 2, NOW - 6)],
        in_flight={("there", 2): [Request(1, "/a/1/0/0.png", NOW - 30).encode()]},
    )

    def heads(processes: object) -> list[Head]:
        return [Head((NOW - 5, "Destroyed"), 10, 1), Head((NOW - 6, "Destroyed"), 3, 0)]

    report, _ = build_report(snapshot, SETTINGS, read_heads=heads)
    rows = {row.pid: row for row in report.processes}
    assert (rows[1].state, rows[1].served, rows[1].failed) == (EXITED, 10, 1)
    assert rows[2].state == GONE and rows[2].state_text == "gone while busy on /a/1/0/0.png"
    assert not rows[2].slow


def test_a_state_follows_from_death_requests_and_a_newest_destroyed() -> None:
    from django_tilestatus.reading.report import process_state

    # (dead, busy, destroyed) -> state
    table = {
        (False, False, False): IDLE,
        (False, True, False): BUSY,
        (True, False, False): GONE,
        (True, True, False): GONE,
        (True, False, True): EXITED,
        (True, True, True): GONE,
        (False, False, True): EXITED,
        (False, True, True): GONE,
    }
    for (is_dead, busy, destroyed), state in table.items():
        assert process_state(is_dead, busy, destroyed) == state, (is_dead, busy, destroyed)


def test_a_process_of_this_host_in_another_pid_namespace_is_judged_by_silence() -> None:
    settings = replace(SETTINGS, pid_namespace=4026531836)
    snapshot = statuses(
        ("here", 7, 5, "Finished /a/1/0/0.png in 0.1 seconds"),  # another namespace
        ("here", 8, 5, "Finished /a/1/0/1.png in 0.1 seconds"),  # this namespace
        ("here", 9, 5, "Finished /a/1/0/2.png in 0.1 seconds"),  # unknown: an older version
        ("here", 10, 30000, "Finished /a/1/0/3.png in 0.1 seconds"),  # another, long silent
    )
    namespaces = {("here", 7): 4026532777, ("here", 8): 4026531836, ("here", 10): 4026532777}
    # Liveness (in this process's table) says every one of these PIDs is gone.
    policy = replace(settings.policy(namespaces), why_dead_here=dead)
    report, purge = build_report(snapshot, settings, policy)
    states = {row.pid: row.state for row in report.processes}
    assert states == {7: IDLE, 8: GONE, 9: GONE}
    assert purge == [("here", 10)]
