"""The metrics endpoint's access and formats, the settings' checks, and tilestatus_top."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from django_tilestatus import status
from django_tilestatus.reading.metrics import exposition
from django_tilestatus.reading.report import Report
from django_tilestatus.statistics.schema import (
    LockWaitBucket,
    LockWaitSeconds,
    RequestCount,
    ResponseBucket,
    ResponseSeconds,
    StatTotals,
)

from .support import ROOT
from .support.status import flush_events, write_busy, write_log
from .test_status_page import NEVER_CACHED, client_for

pytestmark = pytest.mark.django_db

URL = "/tiles/metrics"
TOKEN = "t" * 40


@pytest.fixture
def with_token(settings: Any) -> str:
    settings.TILESTATUS = {**settings.TILESTATUS, "METRICS_TOKEN": TOKEN}
    return TOKEN


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_the_token_opens_the_metrics_and_they_count_what_was_served(
    client: Client, with_token: str
) -> None:
    for _ in range(3):
        assert client.get("/tiles/solid/3/1/2.png").status_code == 200
    assert client.get("/tiles/nowhere/3/1/2.png").status_code == 404
    flush_events()
    response = client.get(URL, headers={"Authorization": f"Bearer {with_token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert set(response["Cache-Control"].replace(" ", "").split(",")) >= NEVER_CACHED
    found = samples(response.content)
    requests = {
        labels: value
        for (name, labels), value in found.items()
        if name == "tilestatus_tile_requests_total"
    }
    assert sum(v for labels, v in requests.items() if ("layer", "solid") in labels) == 3
    assert requests[(("layer", "(other)"), ("outcome", "client_error"), ("zoom", "none"))] == 1
    count = {
        labels: value
        for (name, labels), value in found.items()
        if name == "tilestatus_tile_response_seconds_count"
    }
    assert sum(v for labels, v in count.items() if ("layer", "solid") in labels) == 3
    idle = [
        v
        for (name, labels), v in found.items()
        if name == "tilestatus_processes" and ("state", "idle") in labels
    ]
    assert idle == [1]


def test_openmetrics_when_the_scraper_asks(client: Client, with_token: str) -> None:
    response = client.get(
        URL,
        headers={
            "Authorization": f"Bearer {with_token}",
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.content.endswith(b"# EOF\n")


@pytest.mark.parametrize(
    ("kind", "authorization", "status"),
    [
        ("anonymous", None, 401),
        ("anonymous", "Bearer " + "x" * 40, 403),
        ("anonymous", f"Basic {TOKEN}", 401),
        ("anonymous", "Bearer ", 403),
        ("non-staff", None, 403),
        ("inactive staff", None, 401),  # logged out by the session's check
        ("staff", None, 200),
        ("non-staff", f"Bearer {TOKEN}", 200),
    ],
)
def test_only_the_token_or_a_staff_session_sees_figures(
    django_user_model: Any, with_token: str, kind: str, authorization: str | None, status: int
) -> None:
    client = client_for(django_user_model, kind)
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(URL, headers=headers)
    assert response.status_code == status
    assert set(response["Cache-Control"].replace(" ", "").split(",")) >= NEVER_CACHED
    if status != 200:
        assert b"tilestatus_" not in response.content
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_without_a_token_setting_no_bearer_is_accepted(client: Client) -> None:
    assert client.get(URL, headers={"Authorization": "Bearer "}).status_code == 403
    assert client.get(URL, headers={"Authorization": "Bearer None"}).status_code == 403


def test_metrics_refuse_writes(client: Client, with_token: str) -> None:
    headers = {"Authorization": f"Bearer {with_token}"}
    assert client.post(URL, headers=headers).status_code == 405
    head = client.head(URL, headers=headers)
    assert head.status_code == 200 and head.content == b"" and int(head["Content-Length"]) > 0


@pytest.mark.parametrize("token", ["short", 12345, " " + "t" * 40])
def test_a_weak_metrics_token_is_an_error(settings: Any, token: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "METRICS_TOKEN": token}
    assert "tilestatus.E008" in [message.id for message in run_checks()]


def test_a_short_token_opens_nothing(client: Client, settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "METRICS_TOKEN": "short"}
    assert client.get(URL, headers={"Authorization": "Bearer short"}).status_code == 403


def test_a_good_token_passes_the_checks(settings: Any, with_token: str) -> None:
    assert not [m for m in run_checks() if m.id.startswith("tilestatus.")]


@pytest.mark.parametrize("name", ["status", "metrics"])
def test_a_layer_cannot_take_the_name_of_a_page(settings: Any, name: str) -> None:
    config = dict(settings.TILESTATUS["CONFIG"])
    config["layers"] = {**config["layers"], name: config["layers"]["solid"]}
    settings.TILESTATUS = {**settings.TILESTATUS, "CONFIG": config}
    errors = [message for message in run_checks() if message.id == "tilestatus.E009"]
    assert len(errors) == 1 and repr(name) in errors[0].msg


def test_tilestatus_top_once_shows_processes_and_layers_in_80_columns(client: Client) -> None:
    for _ in range(2):
        assert client.get("/tiles/solid/3/1/2.png").status_code == 200
    assert client.get("/tiles/points/3/1/2.json").status_code == 200
    flush_events()
    out = io.StringIO()
    call_command("tilestatus_top", "--once", stdout=out)
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()  # not a terminal: no colour, no clearing
    assert max(map(len, lines)) <= 80
    assert "1 idle" in lines[0]
    assert any(line.startswith("solid") and " 60m " in line for line in lines)
    assert any(line.startswith("points") for line in lines)


def test_tilestatus_top_lists_each_request_in_flight_under_its_process() -> None:
    store = status.get_store()
    write_log(store, "tiles-2", 4321, (30, "Started /solid/12/2103/1361.png"))
    write_busy(store, "tiles-2", 4321, "/solid/12/2103/1361.png", 30)
    out = io.StringIO()
    call_command("tilestatus_top", "--once", stdout=out)
    lines = out.getvalue().splitlines()
    [row] = [index for index, line in enumerate(lines) if line.startswith("tiles-2")]
    assert "busy" in lines[row] and "SLOW" in lines[row]
    assert "/solid/12/2103/1361.png" in lines[row + 1]
    assert max(map(len, lines)) <= 80


def test_tilestatus_top_colours_only_on_a_terminal() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
    command = [sys.executable, "example_project/manage.py", "tilestatus_top", "--once"]
    env = {**environment, "DJANGO_SETTINGS_MODULE": "example_project.settings", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    main, child = pty.openpty()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=child, timeout=60, check=True)
        os.close(child)
        child = -1
        output = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)
    assert done.returncode == 0
    assert b"\x1b[" in output and b"tilestatus_top " in output
    piped = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert b"tilestatus_top " in piped.stdout and b"\x1b" not in piped.stdout


def test_tilestatus_top_json_is_the_pages_json(client: Client) -> None:
    assert client.get("/tiles/solid/3/1/2.png").status_code == 200
    flush_events()
    out = io.StringIO()
    call_command("tilestatus_top", "--once", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert {"processes", "messages", "tiles"} <= set(data)
    assert data["tiles"]["layers"][0]["layer"] == "solid"


def test_tilestatus_top_says_clearly_when_redis_cannot_be_reached(settings: Any) -> None:
    settings.TILESTATUS = {**settings.TILESTATUS, "REDIS_URL": "redis://127.0.0.1:1/0"}
    with pytest.raises(CommandError, match="Tile status cannot be read: Redis is unavailable"):
        call_command("tilestatus_top", "--once", stdout=io.StringIO())


def test_tilestatus_top_rejects_a_bad_interval() -> None:
    with pytest.raises(CommandError, match="--interval"):
        call_command("tilestatus_top", "--interval", "0", stdout=io.StringIO())


def test_tilestatus_top_redraws_until_ctrl_c_and_exits_cleanly() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TILESTATUS_")}
    process = subprocess.Popen(
        [sys.executable, "example_project/manage.py", "tilestatus_top", "--interval", "0.1"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "example_project.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        screens = 0
        deadline = time.monotonic() + 60
        while screens < 2 and time.monotonic() < deadline:  # two screens: it redraws
            screens += process.stdout.readline().startswith(b"tilestatus_top ")
        assert screens == 2
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert b"Traceback" not in errors


def test_each_statistic_becomes_its_metric_sample() -> None:
    """From the cumulative records alone (no Redis): counters by zoom, and both histograms
    with their sums."""
    totals = StatTotals(
        {
            RequestCount("solid", 3, "hit"): 4,
            RequestCount("solid", -1, "client_error"): 1,
            ResponseBucket("solid", "hit", 0): 3,
            ResponseBucket("solid", "hit", 2): 1,
            ResponseSeconds("solid", "hit"): 0.03,
            LockWaitBucket("solid", 1): 2,
            LockWaitSeconds("solid"): 0.015,
        },
        {"tiles-1": 5},
    )
    body, _ = exposition(totals, Report(now=time.time()))
    found = samples(body)
    solid = ("layer", "solid")
    requests = "tilestatus_tile_requests_total"
    assert found[requests, (solid, ("outcome", "hit"), ("zoom", "3"))] == 4
    assert found[requests, (solid, ("outcome", "client_error"), ("zoom", "none"))] == 1
    response = "tilestatus_tile_response_seconds"
    assert found[f"{response}_bucket", (solid, ("le", "0.005"), ("outcome", "hit"))] == 3
    assert found[f"{response}_bucket", (solid, ("le", "0.025"), ("outcome", "hit"))] == 4
    assert found[f"{response}_count", (solid, ("outcome", "hit"))] == 4
    assert found[f"{response}_sum", (solid, ("outcome", "hit"))] == pytest.approx(0.03)
    lock = "tilestatus_tile_lock_wait_seconds"
    assert found[f"{lock}_bucket", (solid, ("le", "0.005"))] == 0
    assert found[f"{lock}_bucket", (solid, ("le", "+Inf"))] == 2
    assert found[f"{lock}_sum", (solid,)] == pytest.approx(0.015)
    assert found["tilestatus_events_dropped_total", (("host", "tiles-1"),)] == 5
