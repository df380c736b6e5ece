"""The status page: staff only in every format, escaped, never cached, 503 without Redis."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import django
import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from django_tilestatus import conf, status
from django_tilestatus.reading import liveness
from django_tilestatus.reading.report import colour_processes

from .support.processes import dead_pid
from .support.status import write_busy, write_log

pytestmark = pytest.mark.django_db

SECRET = "Started /solid/secret-marker.png"
HOSTILE = "<img src=x onerror=alert(1)>"
FORMATS = {
    "": "text/html; charset=utf-8",
    "?format=html": "text/html; charset=utf-8",
    "?format=json": "application/json",
    "?format=text": "text/plain; charset=utf-8",
}
NEVER_CACHED = {"no-cache", "no-store", "must-revalidate", "private", "max-age=0"}


def make_user(django_user_model: Any, kind: str) -> AbstractBaseUser | None:
    if kind == "anonymous":
        return None
    flags = {
        "inactive staff": {"is_staff": True, "is_active": False},
        "non-staff": {"is_staff": False},
        "staff": {"is_staff": True},
        "superuser": {"is_staff": True, "is_superuser": True},
    }[kind]
    return django_user_model.objects.create_user(kind.replace(" ", "-"), **flags)


def client_for(django_user_model: Any, kind: str) -> Client:
    client = Client()
    user = make_user(django_user_model, kind)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def staff(django_user_model: Any) -> Client:
    return client_for(django_user_model, "staff")


def here() -> str:
    return conf.get_config().host


@pytest.mark.parametrize("query", list(FORMATS))
@pytest.mark.parametrize("kind", ["anonymous", "inactive staff", "non-staff"])
def test_whoever_the_admin_refuses_is_sent_to_its_login(
    django_user_model: Any, kind: str, query: str
) -> None:
    write_log(status.get_store(), here(), 4242, (1, SECRET))
    response = client_for(django_user_model, kind).get("/tiles/status/" + query)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/admin/login/"
    assert parse_qs(location.query)["next"] == ["/tiles/status/" + query]
    assert response.content == b""
    assert {part.strip() for part in response["Cache-Control"].split(",")} >= NEVER_CACHED
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("query", list(FORMATS))
@pytest.mark.parametrize("kind", ["staff", "superuser"])
def test_staff_see_the_status_in_every_format(
    django_user_model: Any, kind: str, query: str
) -> None:
    write_log(status.get_store(), here(), 4242, (1, SECRET))
    response = client_for(django_user_model, kind).get("/tiles/status/" + query)
    assert response.status_code == 200
    assert response["Content-Type"] == FORMATS[query]
    assert SECRET in response.content.decode()
    assert {part.strip() for part in response["Cache-Control"].split(",")} >= NEVER_CACHED
    assert response["X-Content-Type-Options"] == "nosniff"


def test_status_without_slash_redirects_keeping_the_format(staff: Client) -> None:
    response = staff.get("/tiles/status?format=json")
    assert response.status_code in (301, 302)
    assert response["Location"] == "/tiles/status/?format=json"


def test_get_and_head_only_for_staff_while_others_still_go_to_the_login(
    staff: Client, django_user_model: Any
) -> None:
    response = staff.post("/tiles/status/")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert Client(enforce_csrf_checks=True).post("/tiles/status/").status_code == 302
    assert client_for(django_user_model, "non-staff").delete("/tiles/status/").status_code == 302


def test_head_has_the_get_headers_and_no_body(staff: Client) -> None:
    write_log(status.get_store(), here(), 4242, (1, SECRET))
    response = staff.head("/tiles/status/?format=text")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response["Content-Length"]) > len(SECRET)


def test_an_unknown_format_is_a_clear_400(staff: Client) -> None:
    response = staff.get("/tiles/status/?format=<b>xml</b>")
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert b"?format=html, ?format=json or ?format=text" in response.content
    assert b"<b>" not in response.content


def test_a_hostile_tile_path_is_escaped_in_html_and_inert_elsewhere(staff: Client) -> None:
    Client().get("/tiles/solid/%3Cimg%20src=x%20onerror=alert(1)%3E.png")
    html = staff.get("/tiles/status/").content.decode()
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    text = staff.get("/tiles/status/?format=text")
    assert text["Content-Type"] == "text/plain; charset=utf-8"
    assert text["X-Content-Type-Options"] == "nosniff"
    assert f"Started /solid/{HOSTILE}.png" in text.content.decode()
    data = json.loads(staff.get("/tiles/status/?format=json").content)
    assert f"Started /solid/{HOSTILE}.png" in [item["message"] for item in data["messages"]]


def test_json_schema(staff: Client) -> None:
    store = status.get_store()
    write_log(store, here(), 11, (20, "Created"), (19, "Started /solid/1/0/0.png"))
    write_log(store, "tiles-2", 22, (5, "Finished /solid/1/1/0.png in 0.010 seconds"))
    before = time.time()
    data = json.loads(staff.get("/tiles/status/?format=json").content)
    # The original keys stay; the rest is what the page shows (docs/status-page.md).
    assert set(data) == {"now", "processes", "messages"} | {
        "read_at",
        "read_at_iso",
        "host",
        "several_hosts",
        "counts",
        "hidden",
        "clock_ahead",
        "tiles",
        "busy_total",
        "skipped",
        "skipped_text",
        "stacks_left_out",
        "seeding",
    }
    assert data["skipped"] == 0 and data["skipped_text"] == ""
    assert before - 1 <= data["now"] <= time.time() + 1
    line_keys = {"host", "pid", "elapsed", "message"} | {"colour", "indent", "ago"}
    row_keys = line_keys | {"last_event", "last_seen", "state", "state_text", "slow"}
    row_keys |= {"in_flight", "requests", "served", "failed", "busy_path", "busy_for"}
    row_keys |= {"requests_not_listed", "stacks_left_out", "lock_waiters"}
    for item in data["messages"]:
        assert set(item) == line_keys
    for item in data["processes"]:
        assert set(item) == row_keys
    for item in data["processes"] + data["messages"]:
        assert isinstance(item["host"], str) and isinstance(item["pid"], int)
        assert isinstance(item["elapsed"], float) and isinstance(item["message"], str)
    assert [(p["host"], p["pid"]) for p in data["processes"]] == [("tiles-2", 22), (here(), 11)]
    assert [m["message"] for m in data["messages"]] == [
        "Finished /solid/1/1/0.png in 0.010 seconds",
        "Started /solid/1/0/0.png",
        "Created",
    ]


def test_text_is_the_original_layout(staff: Client) -> None:
    store = status.get_store()
    write_log(store, here(), 13235, (130, "Started /osm/15/5255/12664.png"))
    write_log(
        store,
        here(),
        13233,
        (6, "Got cache lock in 0.001 seconds"),
        (5, "Finished /osm/15/5255/12661.png in 0.776 seconds"),
    )
    write_log(store, here(), 13234, (1200, "Created"))  # silent past HIDE_AFTER
    response = staff.get("/tiles/status/?format=text")
    stamp, *lines = response.content.decode().split("\n")
    assert abs(int(stamp) - time.time()) <= 2
    indent = {pid: " " * status.pid_indent(pid) for pid in (13233, 13234, 13235)}
    assert lines == [
        "----------",
        "  1. 13233 Finished /osm/15/5255/12661.png in 0.776 seconds, moments ago",
        "  2. 13235 Started /osm/15/5255/12664.png, 2 minutes ago",
        "----------",
        indent[13233] + " 13233 Finished /osm/15/5255/12661.png in 0.776 seconds, moments ago",
        indent[13233] + " 13233 Got cache lock in 0.001 seconds, moments ago",
        indent[13235] + " 13235 Started /osm/15/5255/12664.png, 2 minutes ago",
        indent[13234] + " 13234 Created, 20 minutes ago",
        "",
    ]


def test_html_shows_states_columns_and_colours(staff: Client, settings: Any) -> None:
    # This process, on one request since it started, for longer than BUSY_AFTER.
    started = liveness.started_at(os.getpid()) or time.time() - 60
    busy_after = (time.time() - started) / 2
    settings.TILESTATUS = {**settings.TILESTATUS, "BUSY_AFTER": busy_after}
    store = status.get_store()
    gone = dead_pid()
    store.write(
        here(),
        os.getpid(),
        [(started, "Started /solid/9/9/9.png"), (started, "Attempted cache lock")],
    )
    write_busy(store, here(), os.getpid(), "/solid/9/9/9.png", time.time() - started)
    write_log(store, here(), gone, (8, "Started /solid/1/1/1.png"))
    write_busy(store, here(), gone, "/solid/1/1/1.png", 8)
    write_log(store, "tiles-2", gone, (3, "Finished /solid/2/2/2.png in 0.5 seconds"))
    html = staff.get("/tiles/status/").content.decode()
    rows = {
        (match["host"], int(match["pid"])): match["cls"]
        for match in re.finditer(
            r'<tr class="(?P<cls>[^"]*)"\s+data-host="(?P<host>[^"]*)" data-pid="(?P<pid>\d+)"',
            html,
        )
    }
    assert rows == {
        (here(), os.getpid()): "tilestatus-busy tilestatus-slow",
        (here(), gone): "tilestatus-gone",
        ("tiles-2", gone): "tilestatus-idle",
    }
    assert re.search(r"busy on /solid/9/9/9\.png for \d+ s", html)
    assert "gone while busy on /solid/1/1/1.png" in html
    # Each request in flight is listed under its process's state, with what it does.
    assert re.search(
        r'tilestatus-request-text">/solid/9/9/9\.png, starting for \d+ s, running \d+ s<', html
    )
    assert '<span class="tilestatus-request-text">gone while busy on /solid/1/1/1.png<' in html
    assert '<span class="tilestatus-served">0</span> served' in html
    assert '<strong class="tilestatus-flag">slow</strong>' in html
    colour = colour_processes([(here(), os.getpid()), (here(), gone), ("tiles-2", gone)])
    remote = f"ts-i{status.pid_indent(gone)} ts-c{colour['tiles-2', gone]}"
    host = '<span class="tilestatus-host">tiles-2 </span>'
    assert f'<li class="{remote}">{host}<span class="tilestatus-pid">{gone}</span>' in html
    assert f'<td class="tilestatus-pid ts-c{colour[here(), gone]}">{gone}</td>' in html
    # The admin's own breadcrumbs, in the running Django's markup (a list from 6.1 on).
    crumbs = re.search(r'<nav aria-label="Breadcrumbs">(.*?)</nav>', html, re.S)
    assert crumbs, html
    if django.VERSION >= (6, 1):
        assert re.fullmatch(
            r'\s*<ol class="breadcrumbs">\s*<li><a href="/admin/">Home</a></li>\s*'
            r'<li aria-current="page">Tile status</li>\s*</ol>\s*',
            crumbs[1],
        ), crumbs[1]
    else:
        assert re.fullmatch(
            r'\s*<div class="breadcrumbs">\s*<a href="/admin/">Home</a>\s*'
            r"&rsaquo; Tile status\s*</div>\s*",
            crumbs[1],
        ), crumbs[1]
    assert 'src="/static/django_tilestatus/status.js"' in html
    assert 'href="/static/django_tilestatus/status.css"' in html
    assert 'data-json-url="/tiles/status/?format=json"' in html


def test_reading_deletes_long_silent_processes_but_never_a_live_local_one(
    staff: Client, settings: Any
) -> None:
    # This process, silent since it started, for longer than PURGE_AFTER.
    started = liveness.started_at(os.getpid()) or time.time() - 60
    purge_after = (time.time() - started) / 2
    settings.TILESTATUS = {**settings.TILESTATUS, "TTL": 86400, "PURGE_AFTER": purge_after}
    store = status.get_store()
    store.write(here(), os.getpid(), [(started, "Finished /solid/1/0/0.png in 0.1 seconds")])
    write_log(store, "tiles-2", 7, (30000, "Finished /solid/1/0/0.png in 0.1 seconds"))
    write_log(store, here(), dead_pid(), (30000, "Started /solid/1/0/0.png"))
    write_log(store, "tiles-2", 8, (0, "Finished /solid/1/0/0.png in 0.1 seconds"))
    text = staff.get("/tiles/status/?format=text").content.decode()
    assert sorted(pid for _, pid, _ in store.registry().entries) == sorted([os.getpid(), 8])
    assert f" {os.getpid()} Finished" in text and " 8 Finished" in text
    assert " 7 Finished" not in text


@pytest.mark.parametrize("query", list(FORMATS))
def test_redis_unreachable_is_a_short_503_without_connection_details(
    staff: Client, settings: Any, query: str
) -> None:
    settings.TILESTATUS = {
        **settings.TILESTATUS,
        "REDIS_URL": "redis://:hunter2@127.0.0.1:1/3",
    }
    response = staff.get("/tiles/status/" + query)
    assert response.status_code == 503
    assert response["Content-Type"] == FORMATS[query]
    body = response.content.decode()
    assert "Redis cannot be reached" in body
    assert "hunter2" not in body and "127.0.0.1:1" not in body
    if "json" in query:
        assert set(json.loads(body)) == {"error"}
    assert response["X-Content-Type-Options"] == "nosniff"


def test_html_tiles_table_shows_the_hit_ratio(staff: Client) -> None:
    assert staff.get("/tiles/solid/4/3/2.png").status_code == 200  # rendered
    assert staff.get("/tiles/solid/4/3/2.png").status_code == 200  # a hit
    html = staff.get("/tiles/status/").content.decode()
    ratios = re.findall(r'<td class="tilestatus-hit-ratio">([^<]*)</td>', html)
    # The solid layer's row for each window: one hit of one render and one hit.
    assert ratios and all(ratio == "50 %" for ratio in ratios), ratios
