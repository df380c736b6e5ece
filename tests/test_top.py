"""``tilestatus_top``: the status in a terminal, once, as JSON, or redrawn until Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import sys
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from django_tilestatus import status

from .support import ROOT
from .support.status import flush_events, write_busy, write_log


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


@pytest.mark.timeout(90)  # bounds the blocking reads below
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
        while screens < 2:  # two screens: it redraws
            line = process.stdout.readline()
            assert line, f"the command ended after {screens} screens"
            screens += line.startswith(b"tilestatus_top ")
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert b"Traceback" not in errors
