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


#: Two PID namespaces (inodes of /proc/self/ns/pid): the judging process's, and another.
MINE, OTHER = 4026531836, 4026532777


@pytest.mark.parametrize(
    ("own", "recorded", "age", "dead", "delete"),
    [
        # Another namespace of this host: its PID means nothing here, silence decides.
        (MINE, OTHER, 60, None, None),
        (
            MINE,
            OTHER,
            700,
            "another PID namespace; silent for 11 minutes",
            "another PID namespace; silent for 11 minutes",
        ),
        # This namespace: liveness, whatever the age.
        (MINE, MINE, 5, "no longer running", "no longer running, last seen moments ago"),
        # The process's namespace unknown (an older version wrote it): liveness, as before.
        (MINE, None, 5, "no longer running", "no longer running, last seen moments ago"),
        # The judge's own namespace unknown (no /proc): liveness, as before.
        (None, OTHER, 5, "no longer running", "no longer running, last seen moments ago"),
    ],
)
def test_a_pid_is_judged_by_liveness_only_in_its_own_namespace(
    own: int | None, recorded: int | None, age: float, dead: str | None, delete: str | None
) -> None:
    namespaces = {} if recorded is None else {(HERE, 42): recorded}
    policy = DeathPolicy(HERE, why_dead_here=stopped, namespace=own, **PURGE).with_namespaces(
        namespaces
    )
    seen = NOW - age
    assert policy.why_dead(HERE, 42, seen, NOW) == dead
    assert policy.why_delete(HERE, 42, seen, NOW) == delete
    assert policy.other_namespace(HERE, 42) == (dead is None or dead.startswith("another"))


def test_a_namespace_changes_nothing_for_other_hosts_and_other_processes() -> None:
    policy = DeathPolicy(
        HERE, why_dead_here=stopped, namespace=MINE, namespaces={(HERE, 7): OTHER}, **PAGE
    )
    # Another host sharing this namespace's number is still judged by silence ...
    policy = policy.with_namespaces({(HERE, 7): OTHER, (THERE, 42): MINE})
    assert policy.why_dead(THERE, 42, NOW - 60, NOW) is None
    assert policy.why_dead(THERE, 42, NOW - 700, NOW) == "silent for 11 minutes"
    assert not policy.other_namespace(THERE, 42)
    # ... and another process of this host without a namespace by liveness.
    assert policy.why_dead(HERE, 42, NOW - 60, NOW) == "no longer running"
    assert policy.why_dead(HERE, 7, NOW - 60, NOW) is None
    # The page keeps a dead process of another namespace listed PURGE_AFTER, as another host's.
    assert policy.why_delete(HERE, 7, NOW - 599, NOW) is None
