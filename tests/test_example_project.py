"""The example project starts, draws its demo layer and shows a home page."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environment.pop("TILESTATUS_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "example_project/manage.py", *args],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_provider_draws_distinct_labelled_tiles() -> None:
    from example_project.demo_provider import DemoProvider

    provider = DemoProvider(layer=None)
    first = provider.renderTile(256, 256, "", SimpleNamespace(zoom=2, column=0, row=0))
    second = provider.renderTile(256, 256, "", SimpleNamespace(zoom=2, column=1, row=0))
    assert first.size == (256, 256)
    assert first.getpixel((128, 5)) != second.getpixel((128, 5))  # colour varies by tile
    assert len(first.getcolors(10000) or []) > 2  # a border and a label, not a flat fill
    buffer = io.BytesIO()
    first.save(buffer, "PNG")
    assert buffer.getvalue().startswith(b"\x89PNG")


NOTICE = "TILESTATUS_REDIS_URL is not set"


def test_check_passes_quietly() -> None:
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert NOTICE not in result.stderr  # nothing is served, nothing recorded


def test_a_serving_process_says_once_that_it_records_in_process() -> None:
    result = manage("shell", "--verbosity", "0", "-c", "import example_project.wsgi")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(NOTICE) == 1, result.stderr
    with_redis = manage(
        "shell", "-v", "0", "-c", "import example_project.wsgi", TILESTATUS_REDIS_URL="redis://x"
    )
    assert NOTICE not in with_redis.stderr


def test_home_page_and_a_tile_through_the_example_urls() -> None:
    code = (
        "from django.test import Client; c = Client(); "
        "home = c.get('/'); tile = c.get('/tiles/demo/0/0/0.png'); "
        "assert home.status_code == 200, home.status_code; "
        "assert b'/tiles/demo/2/3/3.png' in home.content; "
        "assert b'/tiles/status/' in home.content and b'/admin/' in home.content; "
        "assert tile.status_code == 200 and tile['Content-Type'] == 'image/png'; print('ok')"
    )
    result = manage("shell", "--verbosity", "0", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_recording_can_be_switched_off_from_the_environment() -> None:
    code = "from django_tilestatus.conf import get_config; print(get_config().enabled)"
    switched_off = manage("shell", "--verbosity", "0", "-c", code, TILESTATUS_ENABLED="0")
    assert switched_off.stdout.strip() == "False"
    assert manage("shell", "--verbosity", "0", "-c", code).stdout.strip() == "True"
