"""The one rule for dead processes and entries to delete, as the page and the purge use it."""

from __future__ import annotations

import pytest

from django_tilestatus.reading.liveness import EXPIRED, DeathPolicy

NOW = 1_700_000_000.0
HERE, THERE = "here", "there"


def runs(pid: int, last_event: float) -> None:
    return None


def stopped(pid: int, last_event: float) -> str:
    return "no longer running"


#: The page's policy (a dead process stays PURGE_AFTER = 600 s) and the purge command's.
PAGE = {"silence": 600.0, "local_after": 600.0}
PURGE = {"silence": 600.0, "local_after": 0.0}


@pytest.mark.parametrize(
    ("numbers", "host", "liveness", "age", "has_log", "dead", "delete"),
    [
        # This host: liveness decides whether it is dead, whatever its age ...
        (PAGE, HERE, runs, 5, True, None, None),
        (PAGE, HERE, runs, 90_000, True, None, None),
        (PAGE, HERE, stopped, 5, True, "no longer running", None),
        (
            PURGE,
            HERE,
            stopped,
            5,
            True,
            "no longer running",
            "no longer running, last seen moments ago",
        ),
        # ... and the page deletes it only after PURGE_AFTER.
        (
            PAGE,
            HERE,
            stopped,
            700,
            True,
            "no longer running",
            "no longer running, last seen 11 minutes ago",
        ),
        # Other hosts: silence decides, the same for both.
        (PAGE, THERE, stopped, 599, True, None, None),
        (PAGE, THERE, stopped, 700, True, "silent for 11 minutes", "silent for 11 minutes"),
        (PURGE, THERE, runs, 700, True, "silent for 11 minutes", "silent for 11 minutes"),
        (PURGE, THERE, runs, 60, True, None, None),
        # An entry whose messages expired points at nothing.
        (PURGE, HERE, runs, 5, False, None, EXPIRED),
        (PURGE, THERE, runs, 5, False, None, EXPIRED),
    ],
)
def test_dead_and_doomed(
    numbers: dict[str, float],
    host: str,
    liveness: object,
    age: float,
    has_log: bool,
    dead: str | None,
    delete: str | None,
) -> None:
    policy = DeathPolicy(HERE, why_dead_here=liveness, **numbers)  # type: ignore[arg-type]
    seen = NOW - age
    assert policy.why_dead(host, 42, seen, NOW) == dead
    assert policy.why_delete(host, 42, seen, NOW, has_log=has_log) == delete
