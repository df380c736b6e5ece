"""Load: 8 concurrent clients for 10 s against 2 workers, recording into Redis."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import defaultdict

import pytest

from django_tilestatus.storage import RedisStore

from ..support import wait_until
from ..support.example_project import demo_pixels, is_demo_tile
from ..support.http import Answer, request, summary
from ..support.status import KEEP, assert_bounded, read_logs, unmatched_finishes

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

CLIENTS = 8
SECONDS = 10.0
HOT = [(6, x, y) for x in range(8) for y in range(8)]  # cached after their first request


def test_eight_clients_for_ten_seconds(start_server, redis_server, key_prefix, figures) -> None:
    server = start_server(workers=2)
    workers = server.worker_pids()
    client = redis_server.client()
    memory_before = redis_server.info("memory")["used_memory"]
    deadline = time.monotonic() + SECONDS
    answers: list[Answer] = []
    bodies: dict[tuple[int, int, int], set[str]] = defaultdict(set)
    samples: dict[tuple[int, int, int], Answer] = {}
    lock = threading.Lock()

    def run(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            # Three in four from a small hot set, the rest cold (rendered, cache locked).
            coord = (
                rng.choice(HOT)
                if rng.random() < 0.75
                else (9, rng.randrange(512), rng.randrange(512))
            )
            answer = request(server.base, "/tiles/demo/{}/{}/{}.png".format(*coord), timeout=30)
            with lock:
                answers.append(answer)
                bodies[coord].add(hashlib.sha256(answer.body).hexdigest())
                samples.setdefault(coord, answer)

    threads = [threading.Thread(target=run, args=(seed,), daemon=True) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 40)
    assert not any(thread.is_alive() for thread in threads)

    failed = [(a.path, a.status, a.error) for a in answers if not a.ok]
    assert not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    # Every answer for a tile is the same bytes, and those bytes are that tile.
    assert all(len(hashes) == 1 for hashes in bodies.values())
    wrong = [coord for coord, answer in samples.items() if not is_demo_tile(answer, *coord)]
    assert not wrong, f"wrong tiles: {wrong[:5]}"

    def settled():
        logs = read_logs(client, key_prefix)
        newest = [log.entries[0][1] for log in logs]
        return logs if len(logs) == 2 and all(m.startswith("Finished ") for m in newest) else []

    logs = wait_until(settled, seconds=15)
    assert {log.pid for log in logs} == workers == server.worker_pids()
    assert_bounded(client, key_prefix, logs)
    for log in logs:
        assert len(log.entries) == KEEP
        assert unmatched_finishes(log) == [], [m for _, m in reversed(log.entries)]
    keys = {key.decode() for key in client.scan_iter(count=100)}
    statistics = {key for key in keys if ":stats:" in key}
    store = RedisStore(client, key_prefix)
    # However many requests: the registry, and per worker its list, its served/failed
    # counts, its last batch applied and its PID namespace (no request is in flight any
    # more, so no in-flight hash and no busy set).
    per_worker = [
        (
            store.log_key(log.host, log.pid),
            store.counts_key(log.host, log.pid),
            store.applied_key(log.host, log.pid),
            store.pid_namespace_key(log.host, log.pid),
        )
        for log in logs
    ]
    assert keys - statistics == {
        store.registry_key(),
        *(key for keys in per_worker for key in keys),
    }
    # The tile statistics: the cumulative hash and, per minute the run touched, a hash,
    # the maxima and the slowest tiles.
    assert len(statistics) <= 1 + 3 * (SECONDS // 60 + 2)
    memory_after = redis_server.info("memory")["used_memory"]
    # What the app keeps is a few KEEP-long lists, whatever the number of requests.
    kept_bytes = sum(client.memory_usage(key) or 0 for key in client.scan_iter(count=100))
    assert kept_bytes < 64 * 1024, kept_bytes

    figures.update(summary(answers))
    figures.update(
        clients=CLIENTS,
        seconds=SECONDS,
        workers=2,
        distinct_tiles=len(bodies),
        cold_tiles=len(bodies) - len(HOT),
        requests_per_second=round(len(answers) / SECONDS, 1),
        redis_keys=client.dbsize(),
        redis_used_memory_before=memory_before,
        redis_used_memory_after=memory_after,
        redis_bytes_of_app_keys=kept_bytes,
        messages_kept_per_worker=[len(log.entries) for log in logs],
        pixels_checked=len(samples),
        rendered_here=demo_pixels.cache_info().currsize,
    )
