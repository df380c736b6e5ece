"""The public API keeps the original StatusServer's names and semantics."""

from __future__ import annotations

import os
from typing import Any

import pytest

from django_tilestatus import status
from django_tilestatus.status import (
    Status,
    delete_statuses,
    get_recent,
    nice_time,
    pid_indent,
    update_status,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "moments"),
        (14.9, "moments"),
        (15, "15 seconds"),
        (89.9, "89 seconds"),
        (90, "1 minute"),
        (119.9, "1 minute"),
        (120, "2 minutes"),
        (5399, "89 minutes"),
        (5400, "1 hour"),
        (7199.9, "1 hour"),
        (7200, "2 hours"),
        (129599, "35 hours"),
        (129600, "1 day"),
        (172799.9, "1 day"),
        (172800, "2 days"),
        (907199, "10 days"),
        (907200, "1 week"),
        (1209599.9, "1 week"),
        (1209600, "2 weeks"),
        (3887999, "6 weeks"),
        (3888000, "1 month"),
        (5183999.9, "1 month"),
        (5184000, "2 months"),
        (-120, "moments"),  # a clock ahead of this one
        (10**8, "38 months"),
    ],
)
def test_nice_time_thresholds(seconds: float, text: str) -> None:
    """The original's thresholds and truncation, in the singular where the count is 1."""
    assert nice_time(seconds) == text


@pytest.mark.parametrize(
    ("pid", "indent"),
    # Worked out once with the original StatusServer's Python 2 formula,
    # int(md5(str(pid)).hexdigest(), 16) % 32, and written down here.
    [(1, 27), (42, 6), (999, 10), (13233, 19), (13234, 31), (13235, 0), (32768, 4), (4194304, 1)],
)
def test_pid_indent_is_md5_of_the_decimal_pid_mod_32(pid: int, indent: int) -> None:
    assert pid_indent(pid) == indent


def test_pid_indent_matches_the_original_example() -> None:
    # The original's docstring shows 13235 at 0 spaces, 13233 at 18, 13234 at 30.
    indents = {pid: pid_indent(pid) for pid in (13233, 13234, 13235)}
    assert indents[13235] < indents[13233] < indents[13234]


def test_status_unpacks_like_the_original_and_carries_host() -> None:
    item = Status(1.5, 42, "Created", "web1")
    elapsed, pid, message = item
    assert (elapsed, pid, message, item.host) == (1.5, 42, "Created", "web1")
    assert item.elapsed == 1.5 and item.pid == 42 and item.message == "Created"
    assert "host='web1'" in repr(item)


def test_update_status_then_get_recent_youngest_first() -> None:
    update_status("first")
    update_status("second")
    processes, messages = get_recent()
    assert [m.message for m in messages] == ["second", "first"]
    assert [p.message for p in processes] == ["second"]
    assert processes[0].pid == os.getpid()
    assert messages[0].elapsed <= messages[1].elapsed


def test_processes_are_youngest_first(settings: Any) -> None:
    store = status.get_store()
    store.write("a", 1, [(100.0, "old")])
    store.write("b", 2, [(200.0, "new")])
    processes, messages = get_recent(now=250.0)
    assert [(p.host, p.pid, p.message, p.elapsed) for p in processes] == [
        ("b", 2, "new", 50.0),
        ("a", 1, "old", 150.0),
    ]
    assert [m.message for m in messages] == ["new", "old"]


def test_delete_statuses_defaults_to_this_host(settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "HOST": "here"}
    store = status.get_store()
    store.write("here", 5, [(100.0, "mine")])
    store.write("there", 5, [(100.0, "theirs")])
    delete_statuses(5)
    processes, _ = get_recent(now=150.0)
    assert [(p.host, p.pid) for p in processes] == [("there", 5)]
    delete_statuses(5, host="there")
    assert get_recent(now=150.0) == ([], [])


def test_update_status_does_nothing_when_disabled(settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "ENABLED": False}
    update_status("ignored")
    assert get_recent() == ([], [])


def test_status_items_of_several_hosts_pickle_and_keep_their_host() -> None:
    import pickle

    items = [Status(1.5, 7, "Started /a/1/0/0.png", "web1"), Status(2.0, 7, "x", "web2")]
    copies = pickle.loads(pickle.dumps(items))
    assert copies == items
    assert [item.host for item in copies] == ["web1", "web2"]
    assert all(isinstance(item, Status) for item in copies)


@pytest.mark.parametrize("enabled", [True, False])
def test_get_recent_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    import gc

    update_status("hello")
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        _, messages = get_recent()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert [m.message for m in messages] == ["hello"]
