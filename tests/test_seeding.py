"""Seeding in this process: the plan's tile math, the job store, and ``tilestatus_seed`` /
``tilestatus_clean`` with one worker (thread) on fakeredis and a Disk cache of the test's."""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_tilestatus import runtime
from django_tilestatus.recording.recorder import flush_own_events
from django_tilestatus.seeding import area as area_module
from django_tilestatus.seeding.area import Area, area_of, parse_bbox, polygons_from_geojson
from django_tilestatus.seeding.jobs import CANCELLED, DONE, JobStore
from django_tilestatus.seeding.plan import LayerShape, Plan
from django_tilestatus.seeding.running import job_store, work
from django_tilestatus.statistics.schema import RENDERED, RequestCount, SeedCount

ZOOMS_0_6 = sum(4**zoom for zoom in range(7))  # 5,461


def tiles_of(plan: Plan) -> Counter[tuple[str, int, int, int]]:
    seen: Counter[tuple[str, int, int, int]] = Counter()
    for number in range(plan.chunks):
        chunk = plan.chunk(number)
        segment = chunk.segment
        for index in range(chunk.start, chunk.stop):
            for x, y in segment.tiles_of(index, plan.area):
                seen[(segment.layer.name, segment.zoom, x, y)] += 1
    return seen


def test_the_world_at_zooms_0_to_6_is_5461_tiles_each_in_one_chunk() -> None:
    plan = Plan([LayerShape("demo")], 0, 6, Area())
    seen = tiles_of(plan)
    assert len(seen) == ZOOMS_0_6 and set(seen.values()) == {1}
    assert plan.box_tiles() == ZOOMS_0_6


def test_chunks_hold_whole_metatiles_and_every_tile_once() -> None:
    """A 4x4 metatile layer in a box that cuts metatiles: each metatile in one chunk."""
    area = area_of(parse_bbox("-10.5,35.2,30.7,60.1"))
    plan = Plan([LayerShape("meta", 4, 4), LayerShape("one")], 3, 9, area, chunk_tiles=32)
    owner: dict[tuple[str, int, int, int], int] = {}
    for number in range(plan.chunks):
        chunk = plan.chunk(number)
        segment = chunk.segment
        for index in range(chunk.start, chunk.stop):
            for x, y in segment.tiles_of(index, area):
                meta = (
                    segment.layer.name,
                    segment.zoom,
                    x // segment.layer.columns,
                    y // segment.layer.rows,
                )
                assert owner.setdefault(meta, number) == number
    seen = tiles_of(plan)
    assert set(seen.values()) == {1}
    assert len(seen) == plan.box_tiles()


def test_a_huge_plan_costs_what_a_small_one_does() -> None:
    """No tile is listed: a plan of 10**8 tiles or more is a few segments, at most
    MAX_CHUNKS chunks, and computing its figures takes no memory."""
    tracemalloc.start()
    plan = Plan([LayerShape("demo")], 0, 14, Area())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert plan.box_tiles() > 10**8
    assert plan.chunks <= 65536 + 15
    assert peak < 100_000
    last = plan.chunk(plan.chunks - 1)
    assert last.stop == last.segment.metatiles


@pytest.mark.parametrize(
    "text",
    ["1,2,3", "a,b,c,d", "10,50,5,60", "5,60,10,50", "-200,0,10,10", "0,-95,10,10", "nan,0,1,1"],
)
def test_bad_bounding_boxes_are_refused(text: str) -> None:
    with pytest.raises(area_module.AreaError):
        parse_bbox(text)


def test_polygons_touch_the_tiles_they_overlap_and_not_those_in_their_holes() -> None:
    square = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[2, 2], [8, 2], [8, 8], [2, 8], [2, 2]]
    text = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square, hole]}}
            ],
        }
    )
    polygons = polygons_from_geojson(text)
    area = area_of(None, polygons)
    assert area.touches((9, 9, 11, 11))  # a corner inside
    assert area.touches((-1, -1, 11, 11))  # the box holds the polygon
    assert area.touches((5, -1, 6, 11))  # edges cross, no vertex inside either way
    assert not area.touches((3, 3, 4, 4))  # inside the hole
    assert not area.touches((20, 20, 21, 21))
    assert area.box == pytest.approx((0, 0, 10, 10))


@pytest.mark.parametrize(
    "text",
    ["not json", "{}", '{"type": "Point", "coordinates": [1, 2]}', '{"type": "Polygon"}'],
)
def test_geojson_without_polygons_is_refused(text: str) -> None:
    with pytest.raises(area_module.AreaError):
        polygons_from_geojson(text)


# -- the command --------------------------------------------------------------------


@pytest.fixture
def seed_config(settings: Any, tmp_path: Path) -> Path:
    """A Disk cache of the test's, a counting layer and a 2x2 metatile layer; returns the
    log of renders."""
    log = tmp_path / "renders.log"
    log.touch()
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "CONFIG": {
            "cache": {"name": "Disk", "path": str(tmp_path / "tiles"), "umask": "0022"},
            "layers": {
                "count": {
                    "provider": {"class": "tests.providers:Counting", "kwargs": {"log": str(log)}}
                },
                "meta": {
                    "provider": {
                        "class": "tests.providers:CountingArea",
                        "kwargs": {"log": str(log)},
                    },
                    "metatile": {"rows": 2, "columns": 2},
                },
                "broken": {"provider": {"class": "tests.providers:Broken"}},
                "low": {
                    "provider": {"class": "tests.providers:Solid"},
                    "bounds": {"low": 2, "high": 5},
                },
            },
        },
    }
    runtime.reset()
    return log


def renders(log: Path) -> Counter[str]:
    return Counter(log.read_text().split("\n")[:-1])


def files(tmp_path: Path, layer: str) -> int:
    return sum(1 for _ in (tmp_path / "tiles" / layer).rglob("*.png"))


def seed(*args: str) -> str:
    out = __import__("io").StringIO()
    call_command("tilestatus_seed", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_seeding_renders_each_tile_once_then_skips_them(seed_config: Path, tmp_path: Path) -> None:
    output = seed("count", "--zooms", "0-4")
    assert "done" in output
    assert files(tmp_path, "count") == 341
    counted = renders(seed_config)
    assert len(counted) == 341 and set(counted.values()) == {1}
    again = seed("count", "--zooms", "0-4")
    assert "0 rendered, 341 skipped" in again
    assert len(renders(seed_config)) == 341 and set(renders(seed_config).values()) == {1}


def test_seeding_is_counted_apart_from_traffic(seed_config: Path) -> None:
    seed("count", "--zooms", "0-2")
    flush_own_events()
    fields = runtime.get_store().stat_totals().fields
    seeded = {r: v for r, v in fields.items() if isinstance(r, SeedCount)}
    assert sum(seeded.values()) == 21
    assert {r.outcome for r in seeded} == {RENDERED}
    assert not [r for r in fields if isinstance(r, RequestCount)]


def test_force_and_older_than_render_cached_tiles_again(seed_config: Path, tmp_path: Path) -> None:
    seed("count", "--zooms", "0-2")
    assert "21 rendered" in seed("count", "--zooms", "0-2", "--force")
    assert set(renders(seed_config).values()) == {2}
    assert "0 rendered, 21 skipped" in seed("count", "--zooms", "0-2", "--older-than", "1h")
    future = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 60))
    assert "21 rendered" in seed("count", "--zooms", "0-2", "--older-than", future)


def test_a_metatile_is_rendered_once_for_all_its_tiles(seed_config: Path) -> None:
    seed("meta", "--zooms", "0-4")
    counted = renders(seed_config)
    # 2x2 metatiles: 1 at zooms 0 and 1, then 4, 16, 64.
    assert sum(counted.values()) == 1 + 1 + 4 + 16 + 64
    assert set(counted.values()) == {1}
    assert "0 rendered, 341 skipped" in seed("meta", "--zooms", "0-4")


def test_a_bbox_and_geojson_narrow_the_tiles(seed_config: Path, tmp_path: Path) -> None:
    seed("count", "--zooms", "0-6", "--bbox", "0,0,10,10")
    assert sum(renders(seed_config).values()) == 1 + 1 + 1 + 1 + 1 + 1 + 2 * 2
    shape = tmp_path / "area.geojson"
    # A thin diagonal triangle: fewer tiles than its box at zoom 8.
    shape.write_text(
        json.dumps({"type": "Polygon", "coordinates": [[[20, 20], [30, 30], [30, 29], [20, 20]]]})
    )
    out = seed("count", "--zooms", "8", "--geojson", str(shape), "--dry-run")
    box_plan = seed("count", "--zooms", "8", "--bbox", "20,20,30,30", "--dry-run")
    total = int(out.split("total")[1].split()[0].replace(",", ""))
    box_total = int(box_plan.split("total")[1].split()[0].replace(",", ""))
    assert 0 < total < box_total


def test_a_dry_run_prints_the_plan_and_writes_nothing(
    seed_config: Path, tmp_path: Path, settings: Any
) -> None:
    out = seed("count", "meta", "--zooms", "0-6", "--dry-run")
    assert "10,922" in out and "nothing written" in out
    assert not (tmp_path / "tiles").exists()
    assert job_store().recent() == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["nope", "--zooms", "0-2"], "Unknown layer 'nope'"),
        (["count"], "--zooms is required"),
        (["count", "--zooms", "3-1"], "first zoom is past the last"),
        (["low", "--zooms", "0-3"], "outside layer 'low''s zooms 2-5"),
        (["count", "--zooms", "0-2", "--bbox", "10,0,0,10"], "inverted"),
        (["count", "--zooms", "0-2", "--bbox", "0,0,10,100"], "latitudes"),
        (["count", "--zooms", "0-2", "--geojson", "/nonexistent.json"], "cannot read"),
        (["count", "--zooms", "0-2", "--older-than", "soon"], "--older-than"),
        (["count", "--zooms", "0-12"], "more than --max-tiles"),
        (["count", "--zooms", "0-4", "--max-tiles", "100"], "pass --yes"),
        (["--resume", "feedbeef"], "Unknown seeding job"),
        (["--cancel", "feedbeef"], "Unknown seeding job"),
        (["count", "--zooms", "0-2", "--processes", "0"], "--processes"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(seed_config: Path, args: list[str], words: str) -> None:
    with pytest.raises(CommandError) as caught:
        seed(*args)
    message = str(caught.value)
    assert words in message and "\n" not in message
    assert caught.value.returncode == 1


def test_bad_geojson_files_are_one_line_errors(seed_config: Path, tmp_path: Path) -> None:
    for text, words in (
        ("{", "does not parse"),
        ('{"type":"Point","coordinates":[0,0]}', "no Polygon"),
    ):
        path = tmp_path / "bad.geojson"
        path.write_text(text)
        with pytest.raises(CommandError, match=words):
            seed("count", "--zooms", "0-2", "--geojson", str(path))


def test_max_tiles_gives_way_to_yes(seed_config: Path, tmp_path: Path) -> None:
    seed("count", "--zooms", "0-2", "--max-tiles", "10", "--yes")
    assert files(tmp_path, "count") == 21


def test_failed_tiles_end_the_job_failed_with_its_errors(seed_config: Path) -> None:
    with pytest.raises(CommandError) as caught:
        seed("broken", "--zooms", "0-1")
    assert caught.value.returncode == 3
    job = job_store().recent()[0]
    assert job.state == "failed" and job.failed == 5 and job.errors
    assert "data source is down" in job.errors[0]


def test_an_interrupted_job_resumes_with_only_the_rest(seed_config: Path) -> None:
    """Stop a job after two chunks; --resume renders the others, none twice."""
    store = job_store()
    request = __import__("django_tilestatus.seeding.options", fromlist=["x"])
    made = request.request_of(
        {
            "zooms": "0-5",
            "layers": ["count"],
            "bbox": None,
            "geojson": None,
            "older_than": None,
            "extension": "png",
            "force": False,
        }
    )
    job_id = store.create(made.spec, made.plan.box_tiles(), made.plan.chunks, "test")
    store.start(job_id)
    did = []

    def stop_after_two() -> bool:
        job = store.get(job_id)
        assert job is not None
        did.append(job.chunks_done)
        return job.chunks_done >= 2

    work(job_id, stop_after_two)
    job = store.get(job_id)
    assert job is not None and job.chunks_done == 2 and job.state == "running"
    out = seed("--resume", job_id)
    assert "Resuming" in out
    job = store.get(job_id)
    assert job is not None and job.state == DONE
    assert job.processed == 1365 and job.skipped == 0
    counted = renders(seed_config)
    assert len(counted) == 1365 and set(counted.values()) == {1}
    with pytest.raises(CommandError, match="is done"):
        seed("--resume", job_id)


def test_a_cancelled_job_stops_and_says_so(seed_config: Path) -> None:
    out = seed("count", "--zooms", "0-1")
    job_id = out.split()[1].rstrip(":")
    with pytest.raises(CommandError, match="already ended"):
        seed("--cancel", job_id)
    store = job_store()
    request = __import__("django_tilestatus.seeding.options", fromlist=["x"])
    made = request.request_of(
        {
            "zooms": "0-5",
            "layers": ["count"],
            "bbox": None,
            "geojson": None,
            "older_than": None,
            "extension": "png",
            "force": False,
        }
    )
    job_id = store.create(made.spec, made.plan.box_tiles(), made.plan.chunks, "test")
    assert "Cancelled" in seed("--cancel", job_id)
    assert store.state(job_id) == CANCELLED
    assert work(job_id, lambda: False) == 0


def test_a_chunk_done_twice_counts_once(redis_client: Any) -> None:
    prefix = f"tilestatus-seedtest-{os.getpid()}-{time.monotonic_ns()}"
    store = JobStore(redis_client, prefix, ttl=60)
    try:
        job_id = store.create({"layers": ["x"]}, 20, 2, "test")
        store.start(job_id)
        store.finish_chunk(job_id, 0, (10, 0, 0), "h", 1)
        store.finish_chunk(job_id, 0, (10, 0, 0), "h", 2)
        job = store.get(job_id)
        assert job is not None and job.done == 10 and job.chunks_done == 1
        assert store.undone(job_id, 2) == [1]
        job = store.finish_chunk(job_id, 1, (8, 2, 0), "h", 2)
        assert job is not None and job.state == DONE and job.processed == 20
        assert {w.pid for w in job.workers} == {1, 2}
        keys = redis_client.keys(f"{prefix}:*")
        assert keys and all(redis_client.ttl(key) > 0 for key in keys)
        assert all(f"{{{prefix}}}" in (k.decode() if isinstance(k, bytes) else k) for k in keys)
    finally:
        for key in redis_client.keys(f"{prefix}:*"):
            redis_client.delete(key)


def _immediate_backends() -> list[str]:
    """The immediate backends of the task frameworks installed: the backport's (the
    ``seed`` extra) always, Django's own on Django 6.0+."""
    backends = ["django_tasks.backends.immediate.ImmediateBackend"]
    try:
        import django.tasks  # noqa: F401  (Django 6.0+)
    except ImportError:
        return backends
    return [*backends, "django.tasks.backends.immediate.ImmediateBackend"]


@pytest.mark.parametrize("backend", _immediate_backends())
def test_enqueue_sends_chunks_to_the_task_backend(
    seed_config: Path, settings: Any, backend: str
) -> None:
    """With an immediate backend each chunk runs as it is enqueued."""
    settings.TASKS = {"default": {"BACKEND": backend}}
    out = seed("count", "--zooms", "0-3", "--enqueue")
    assert "Enqueued 4 chunks" in out
    job = job_store().recent()[0]
    assert job.state == DONE and job.done == 85
    assert set(renders(seed_config).values()) == {1}


def test_clean_removes_cached_tiles_of_the_area(seed_config: Path, tmp_path: Path) -> None:
    seed("count", "--zooms", "0-3")
    out = __import__("io").StringIO()
    call_command("tilestatus_clean", "count", "--zooms", "2-3", "--dry-run", stdout=out)
    assert "Would remove 80 cached tiles" in out.getvalue()
    assert files(tmp_path, "count") == 85
    call_command("tilestatus_clean", "count", "--zooms", "3", "--older-than", "1h", stdout=out)
    assert files(tmp_path, "count") == 85  # none is older than an hour
    call_command("tilestatus_clean", "count", "--zooms", "2-3", stdout=out)
    assert "Removed 80 cached tiles" in out.getvalue()
    assert files(tmp_path, "count") == 5
    with pytest.raises(CommandError, match="Unknown layer"):
        call_command("tilestatus_clean", "nope", "--zooms", "2-3")


# -- the page, JSON, text, top and metrics ------------------------------------------


def _staff(django_user_model: Any, staff: bool = True) -> Any:
    from django.test import Client

    user = django_user_model.objects.create_user(
        "seeder", password="pw", is_staff=staff, is_superuser=staff
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_page_json_text_top_and_metrics_show_jobs_and_staff_cancel(
    seed_config: Path, django_user_model: Any
) -> None:
    from django.urls import reverse

    seed("count", "--zooms", "0-2")
    store = job_store()
    request = __import__("django_tilestatus.seeding.options", fromlist=["x"])
    made = request.request_of(
        {
            "zooms": "0-5",
            "layers": ["count"],
            "bbox": None,
            "geojson": None,
            "older_than": None,
            "extension": "png",
            "force": False,
        }
    )
    running = store.create(made.spec, 1365, made.plan.chunks, "someone@somewhere")
    store.start(running)
    store.finish_chunk(running, 0, (5, 0, 0), "hostA", 42)
    client = _staff(django_user_model)
    url = reverse("tilestatus:status")
    jobs = client.get(url, {"format": "json"}).json()["seeding"]
    assert [job["state"] for job in jobs] == ["running", "done"]
    first = jobs[0]
    assert first["id"] == running and first["done"] == 5 and first["total"] == 1365
    assert first["processes"] == ["hostA:42"] and first["hosts"] == ["hostA"]
    assert first["started_by"] == "someone@somewhere" and first["eta"] is not None
    assert jobs[1]["done"] == 21
    page = client.get(url).content.decode()
    assert 'id="tilestatus-seeding"' in page and "<progress" in page
    assert page.count('class="tilestatus-seeding-cancel"') == 1
    text = client.get(url, {"format": "text"}).content.decode()
    assert "Seeding" in text and running in text and "hostA:42" in text
    from django_tilestatus.management.commands.tilestatus_top import screen
    from django_tilestatus.reading.current import current_report

    assert running in screen(current_report(), lambda text, kind: text)
    metrics = client.get(reverse("tilestatus:metrics")).content.decode()
    assert f'tilestatus_seed_job_tiles{{job="{running}",kind="done",state="running"}} 5.0' in (
        metrics
    )
    assert 'tilestatus_seeded_tiles_total{layer="count",outcome="rendered",zoom="2"} 16.0' in (
        metrics
    )
    cancel = reverse("tilestatus:seeding-cancel", args=[running])
    assert client.post(cancel).status_code == 403  # no CSRF token
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    answer = client.post(cancel, {"csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert store.state(running) == CANCELLED
    assert client.get(cancel).status_code == 405
    assert (
        client.post(
            reverse("tilestatus:seeding-cancel", args=["abc"]), {"csrfmiddlewaretoken": token}
        ).status_code
        == 404
    )


@pytest.mark.django_db
def test_only_staff_cancel(seed_config: Path, django_user_model: Any) -> None:
    from django.urls import reverse

    store = job_store()
    job_id = store.create({"layers": ["count"]}, 10, 1, "x")
    client = _staff(django_user_model, staff=False)
    client.handler.enforce_csrf_checks = False
    answer = client.post(reverse("tilestatus:seeding-cancel", args=[job_id]))
    assert answer.status_code == 302 and "login" in answer["Location"]
    assert store.state(job_id) == "planned"
