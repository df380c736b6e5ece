"""``tilestatus_purge`` on a real Redis with real processes: the dead go, the living stay."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from django_tilestatus import conf, status
from django_tilestatus.reading import liveness
from django_tilestatus.storage import RedisStore

from .support.processes import dead_pid
from .support.real_redis import REAL_REDIS_URL
from .support.status import flush_events, write_log

pytestmark = pytest.mark.redis

#: Records one status as the process it runs in, prints its PID, then exits,
#: or with a fourth argument stays alive until its stdin closes.
RECORD = """
import os, sys, time, redis
from django_tilestatus.storage import RedisStore
url, prefix, host = sys.argv[1:4]
store = RedisStore(redis.Redis.from_url(url), prefix)
store.write(host, os.getpid(), [(time.time(), "Started /demo/3/1/2.png")])
print(os.getpid(), flush=True)
if len(sys.argv) > 4:
    sys.stdin.read()
"""


def here() -> str:
    return conf.get_config().host


def purge(*args: str, verbosity: int = 1) -> list[str]:
    out = StringIO()
    call_command("tilestatus_purge", *args, stdout=out, no_color=True, verbosity=verbosity)
    return out.getvalue().splitlines()


@pytest.fixture
def real_store(use_real_redis: str, real_redis: Any) -> RedisStore:
    return RedisStore(real_redis, prefix=use_real_redis)


@pytest.fixture
def exited_worker(use_real_redis: str) -> int:
    """A process that recorded a status and exited: its PID is dead."""
    child = subprocess.run(
        [sys.executable, "-c", RECORD, REAL_REDIS_URL, use_real_redis, here()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(child.stdout)


@pytest.fixture
def live_worker(use_real_redis: str) -> Iterator[int]:
    """A process that recorded a status and is still running."""
    with subprocess.Popen(
        [sys.executable, "-c", RECORD, REAL_REDIS_URL, use_real_redis, here(), "stay"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            yield int(child.stdout.readline())
        finally:
            child.kill()


def test_dead_workers_go_and_live_ones_stay(
    real_store: RedisStore, exited_worker: int, live_worker: int
) -> None:
    status.update_status("Started /demo/1/0/0.png")  # this process: alive
    flush_events()
    write_log(real_store, "tiles-9", 99, (30000, "Finished /demo/2/0/0.png in 0.1 seconds"))
    write_log(real_store, "tiles-9", 100, (60, "Finished /demo/2/1/0.png in 0.1 seconds"))
    write_log(real_store, "tiles-9", 101, (120, "Finished /demo/2/2/0.png in 0.1 seconds"))
    real_store.client.delete(real_store.log_key("tiles-9", 101))  # as if its TTL ran out
    everyone = sorted(real_store.registry().entries)

    assert purge("--dry-run") == [
        f"Would delete {here()} PID {exited_worker}: no longer running, last seen moments ago",
        "Would delete tiles-9 PID 101: its messages have expired",
        "Would delete tiles-9 PID 99: silent for 8 hours",
        "Would delete 3 processes and keep 3 (dry run: nothing was deleted).",
    ]
    assert sorted(real_store.registry().entries) == everyone
    assert real_store.client.exists(real_store.log_key(here(), exited_worker))

    assert purge() == [
        f"Deleted {here()} PID {exited_worker}: no longer running, last seen moments ago",
        "Deleted tiles-9 PID 101: its messages have expired",
        "Deleted tiles-9 PID 99: silent for 8 hours",
        "Deleted 3 processes, kept 3.",
    ]
    kept = {(host, pid) for host, pid, _ in real_store.registry().entries}
    assert kept == {(here(), os.getpid()), (here(), live_worker), ("tiles-9", 100)}
    for host, pid in kept:
        assert real_store.client.exists(real_store.log_key(host, pid))
    assert not real_store.client.exists(real_store.log_key(here(), exited_worker))
    assert not real_store.client.exists(real_store.log_key("tiles-9", 99))


def test_a_live_local_process_stays_however_long_silent(
    real_store: RedisStore, live_worker: int
) -> None:
    assert purge("--older-than", "0.001") == ["Nothing to delete; kept 1 process."]


def test_a_reused_pid_counts_as_dead(real_store: RedisStore, live_worker: int) -> None:
    # The live worker's PID, as if an older process had recorded under it long ago.
    real_store.client.delete(real_store.log_key(here(), live_worker))
    write_log(real_store, here(), live_worker, (1000, "Started /demo/1/1/1.png"))
    assert purge() == [
        f"Deleted {here()} PID {live_worker}: {liveness.REUSED}, last seen 16 minutes ago",
        "Deleted 1 process, kept 0.",
    ]


def test_older_than_sets_the_silence_for_other_hosts(real_store: RedisStore) -> None:
    write_log(real_store, "tiles-9", 100, (120, "Finished /demo/2/1/0.png in 0.1 seconds"))
    write_log(real_store, "tiles-9", 102, (30, "Finished /demo/2/1/1.png in 0.1 seconds"))
    assert purge("--older-than", "60", verbosity=2) == [
        "Deleted tiles-9 PID 100: silent for 2 minutes",
        "Kept tiles-9 PID 102: last seen 30 seconds ago",
        "Deleted 1 process, kept 1.",
    ]


def test_a_count_of_one_is_singular_in_the_output(real_store: RedisStore) -> None:
    write_log(real_store, "tiles-9", 100, (100, "Finished /demo/2/1/0.png in 0.1 seconds"))
    write_log(real_store, "tiles-9", 101, (5500, "Finished /demo/2/1/1.png in 0.1 seconds"))
    write_log(real_store, "tiles-9", 102, (60, "Finished /demo/2/1/2.png in 0.1 seconds"))
    assert purge("--older-than", "80", verbosity=2) == [
        "Deleted tiles-9 PID 100: silent for 1 minute",
        "Deleted tiles-9 PID 101: silent for 1 hour",
        "Kept tiles-9 PID 102: last seen 60 seconds ago",
        "Deleted 2 processes, kept 1.",
    ]


def test_verbosity_zero_prints_nothing(real_store: RedisStore, exited_worker: int) -> None:
    assert purge(verbosity=0) == []
    assert real_store.registry().entries == []


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_a_non_positive_older_than_is_refused(value: str) -> None:
    with pytest.raises(CommandError, match="--older-than must be a positive number of seconds"):
        purge("--older-than", value)


def test_an_unreachable_redis_is_a_command_error(settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "REDIS_URL": "redis://:hunter2@127.0.0.1:1/3"}
    with pytest.raises(CommandError, match="Redis cannot be reached") as error:
        purge()
    assert "hunter2" not in str(error.value)


def test_a_process_of_this_host_in_another_pid_namespace_goes_only_when_silent(
    real_store: RedisStore, exited_worker: int
) -> None:
    """Its PID means nothing in this process table: it is judged as another host's."""
    own = liveness.pid_namespace()
    if own is None:
        pytest.skip("needs /proc/self/ns/pid (Linux)")
    other, gone = own + 1, dead_pid()  # ``exited_worker`` and ``gone`` run nowhere here
    real_store.announce(here(), exited_worker, other)
    write_log(real_store, here(), gone, (60, "Finished /demo/2/1/0.png in 0.1 seconds"))
    real_store.announce(here(), gone, own)
    write_log(real_store, here(), 99, (30000, "Finished /demo/2/0/0.png in 0.1 seconds"))
    real_store.announce(here(), 99, other)
    assert purge(verbosity=2) == [
        f"Deleted {here()} PID {gone}: no longer running, last seen 60 seconds ago",
        f"Deleted {here()} PID 99: another PID namespace; silent for 8 hours",
        f"Kept {here()} PID {exited_worker}: another PID namespace, last seen moments ago",
        "Deleted 2 processes, kept 1.",
    ]
    assert {pid for _, pid, _ in real_store.registry().entries} == {exited_worker}
    assert real_store.namespaces([(here(), 99), (here(), exited_worker)]) == {
        (here(), exited_worker): other
    }
