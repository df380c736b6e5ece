"""A read-only replica serves the status page: reading works, clean-up waits."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from django.test import Client

from django_tilestatus.storage import RedisStore

from ..support import free_port
from ..support.redis_server import RedisServer
from ..support.status import write_log

pytestmark = [pytest.mark.reliability, pytest.mark.redis, pytest.mark.django_db]


def test_a_read_only_replica_serves_every_format_and_logs_its_refusals_once(
    admin_client: Client, redis_server: RedisServer, app_on_redis: str, caplog: Any
) -> None:
    client = redis_server.client()
    store = RedisStore(client, app_on_redis, ttl=3600)
    write_log(store, "web-1", 11, (5, "Started /demo/1/0/0.png"))
    # What a read would clean up: a long-silent process of another host, a
    # registry entry whose list has gone, a malformed member.
    write_log(store, "web-2", 22, (30_000, "Finished /demo/1/0/0.png in 0.1 seconds"))
    client.zadd(store.registry_key(), {"33:web-3": time.time(), "x:web-4": time.time()})
    # A replica of a master that is not there: it keeps its data and refuses writes.
    client.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    assert client.info("replication")["role"] == "slave"

    with caplog.at_level(logging.WARNING, logger="django_tilestatus"):
        for _ in range(3):
            for fmt in ("html", "json", "text"):
                response = admin_client.get(f"/tiles/status/?format={fmt}")
                assert response.status_code == 200, (fmt, response.content[:200])
    data = json.loads(admin_client.get("/tiles/status/?format=json").content)
    assert [(p["host"], p["pid"]) for p in data["processes"]] == [("web-1", 11)]

    refused = [r.getMessage() for r in caplog.records if "could not" in r.getMessage()]
    # One line per kind of clean-up, however many reads: not one per request.
    assert refused and len(refused) == len(set(refused)) <= 3, refused
    assert all("ReadOnlyError" in line for line in refused), refused
    assert client.zcard(store.registry_key()) == 4  # nothing could be deleted
    client.close()
