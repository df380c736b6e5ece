"""The Redis status log, on fakeredis and on a real Redis."""

from __future__ import annotations

import time

import pytest
from redis.crc import key_slot

from django_tilestatus.storage import RedisStore


def test_write_then_read_newest_first(store: RedisStore) -> None:
    now = time.time()
    store.write(
        "web1",
        101,
        [(now - 2, "Started /a/0/0/0.png"), (now - 1, "Finished /a/0/0/0.png in 0.010 seconds")],
    )
    [log] = store.read(now=now)
    assert (log.host, log.pid) == ("web1", 101)
    assert [message for _, message in log.entries] == [
        "Finished /a/0/0/0.png in 0.010 seconds",
        "Started /a/0/0/0.png",
    ]
    assert log.last_seen == now - 1


def test_lists_keep_at_most_keep_messages(store: RedisStore) -> None:
    now = time.time()
    store.write("web1", 101, [(now - 10 + i, f"event {i}") for i in range(8)])
    store.write("web1", 101, [(now, "event 8")])
    [log] = store.read(now=now)
    assert [m for _, m in log.entries] == ["event 8", "event 7", "event 6", "event 5", "event 4"]
    assert store.client.llen(store.log_key("web1", 101)) == store.keep


def test_every_key_carries_a_ttl(store: RedisStore) -> None:
    store.write("web1", 101, [(time.time(), "Created")])
    for key in (store.log_key("web1", 101), store.registry_key()):
        assert 0 < store.client.ttl(key) <= store.ttl


def test_same_pid_on_two_hosts_stays_apart(store: RedisStore) -> None:
    now = time.time()
    store.write("web1", 7, [(now - 1, "on web1")])
    store.write("web2", 7, [(now, "on web2")])
    logs = store.read(now=now)
    assert [(log.host, log.pid, log.entries[0][1]) for log in logs] == [
        ("web2", 7, "on web2"),
        ("web1", 7, "on web1"),
    ]


def test_host_names_with_colons_round_trip(store: RedisStore) -> None:
    store.write("rack:a:web1", 42, [(time.time(), "Created")])
    assert [(log.host, log.pid) for log in store.read()] == [("rack:a:web1", 42)]


def test_delete_removes_messages_and_registry_entry(store: RedisStore) -> None:
    now = time.time()
    store.write("web1", 1, [(now, "one")])
    store.write("web1", 2, [(now, "two")])
    assert store.delete([("web1", 1)]) == 1
    assert [(log.host, log.pid) for log in store.read(now=now)] == [("web1", 2)]
    assert not store.client.exists(store.log_key("web1", 1))


def test_registry_entries_past_ttl_are_dropped(store: RedisStore) -> None:
    now = time.time()
    store.write("web1", 1, [(now - store.ttl - 5, "long ago")])
    store.write("web1", 2, [(now, "just now")])
    assert [log.pid for log in store.read(now=now)] == [2]
    assert store.client.zcard(store.registry_key()) == 1


def test_registry_entry_whose_list_is_gone_is_dropped(store: RedisStore) -> None:
    now = time.time()
    store.write("web1", 1, [(now, "one")])
    store.client.delete(store.log_key("web1", 1))
    assert store.read(now=now) == []
    assert store.client.zcard(store.registry_key()) == 0


@pytest.mark.parametrize("prefix", ["tilestatus", "site-b", "{site}", "a:b"])
def test_every_key_starts_with_the_prefix_and_shares_one_cluster_slot(prefix: str) -> None:
    """So in a Redis Cluster each pipeline of the app goes to one node."""
    store = RedisStore(None, prefix)
    keys = [store.registry_key()]
    keys += [store.log_key(host, pid) for host, pid in [("web1", 1), ("{x}", 2), ("a}{b", 3)]]
    assert all(key.startswith(prefix + ":") for key in keys)
    assert len({key_slot(key.encode()) for key in keys}) == 1


def test_sites_with_other_prefixes_use_other_slots() -> None:
    slots = {key_slot(RedisStore(None, f"site-{n}").registry_key().encode()) for n in range(8)}
    assert len(slots) > 1


def test_reading_ignores_unrelated_keys(store: RedisStore) -> None:
    # Under this test's own prefix, so the clean-up deletes them.
    unrelated = [f"{store.prefix}:other:log:x:1", f"{store.prefix}:pid-123-statuses"]
    for key in unrelated:
        store.client.set(key, "1 not ours")
    store.write("web1", 1, [(time.time(), "ours")])
    assert [(log.host, log.pid) for log in store.read()] == [("web1", 1)]


def test_malformed_entries_are_skipped(store: RedisStore) -> None:
    now = time.time()
    store.write("web1", 1, [(now, "good")])
    store.client.lpush(store.log_key("web1", 1), "not-a-time bad")
    [log] = store.read(now=now)
    assert [m for _, m in log.entries] == ["good"]


def test_messages_keep_unicode_and_spaces(store: RedisStore) -> None:
    store.write("web1", 1, [(time.time(), "Started /café/1/2/3.png  two  spaces")])
    [log] = store.read()
    assert log.entries[0][1] == "Started /café/1/2/3.png  two  spaces"


def test_a_process_announces_its_pid_namespace_and_delete_forgets_it(store: RedisStore) -> None:
    store.announce("web1", 7, 4026531836)
    store.announce("web2", 7, 4026532777)
    store.write("web1", 7, [(time.time(), "Created")])
    wanted = [("web1", 7), ("web2", 7), ("web1", 8)]
    assert store.namespaces(wanted) == {("web1", 7): 4026531836, ("web2", 7): 4026532777}
    # It outlives the messages: the writer announces again every TTL/2.
    assert store.ttl < store.client.ttl(store.pid_namespace_key("web1", 7)) <= 2 * store.ttl
    store.announce("web2", 7, None)  # unknown now: forgotten
    assert store.namespaces(wanted) == {("web1", 7): 4026531836}
    assert store.delete([("web1", 7)]) == 1
    assert store.namespaces(wanted) == {}
    assert store.namespaces([]) == {}


@pytest.mark.parametrize("value", [b"", b"0", b"-4", b"4026531836.5", b"nope", b"\xff"])
def test_a_recorded_namespace_that_is_no_inode_counts_as_unknown(
    store: RedisStore, value: bytes
) -> None:
    store.client.set(store.pid_namespace_key("web1", 7), value)
    assert store.namespaces([("web1", 7)]) == {}
