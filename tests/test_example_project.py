"""The example project starts, draws its demo layer and shows a home page."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.providers import require_module

ROOT = Path(__file__).resolve().parent.parent
#: Colours of world.xml: the sea, and North America's fill.
SEA, NORTH_AMERICA = (185, 211, 230), (184, 217, 163)


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


def test_home_page_shows_the_world_map_rendered_by_mapnik() -> None:
    require_module("mapnik", "mapnik")
    code = (
        "import io; from PIL import Image; from django.test import Client; c = Client(); "
        "home = c.get('/'); assert b'/tiles/world/2/3/3.png' in home.content; "
        "tile = c.get('/tiles/world/2/1/1.png'); "
        "assert tile.status_code == 200 and tile['Content-Type'] == 'image/png'; "
        "image = Image.open(io.BytesIO(tile.content)).convert('RGB'); "
        "print(image.getpixel((128, 128))); print(image.getpixel((30, 100)))"
    )
    result = manage("shell", "--verbosity", "0", "-c", code)
    assert result.returncode == 0, result.stderr
    # Tile 2/1/1 spans the North Atlantic: sea in the middle, North America on the left.
    assert result.stdout.splitlines() == [str(SEA), str(NORTH_AMERICA)]


def test_without_mapnik_the_example_starts_without_the_world_layer(tmp_path: Path) -> None:
    hidden = tmp_path / "mapnik"
    hidden.mkdir()
    (hidden / "__init__.py").write_text("raise ImportError('mapnik hidden by the test')\n")
    code = (
        "from django.test import Client; c = Client(); home = c.get('/'); "
        "assert home.status_code == 200 and b'/tiles/world/' not in home.content; "
        "assert c.get('/tiles/world/0/0/0.png').status_code == 404; "
        "assert c.get('/tiles/demo/0/0/0.png').status_code == 200; print('ok')"
    )
    paths = [str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {"PYTHONPATH": os.pathsep.join(paths)}

    checked = manage("check", **env)
    served = manage("shell", "--verbosity", "0", "-c", code, **env)

    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout
    assert checked.stderr.count("Mapnik is not available") == 1
    assert "mapnik hidden by the test" in checked.stderr
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip() == "ok"


SENTINELS = "127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (  # the django-redis way: the cache's SentinelClient, reused by the app
            {"TILESTATUS_REDIS_SENTINELS": SENTINELS},
            "None None False django_redis.client.SentinelClient",
        ),
        (  # the app's own client
            {"TILESTATUS_REDIS_SENTINELS": SENTINELS, "TILESTATUS_REDIS_CLIENT": "own"},
            "redis://mymaster/0 (('127.0.0.1', 26379), ('127.0.0.1', 26380), "
            "('127.0.0.1', 26381)) False LocMemCache",
        ),
        (
            {"TILESTATUS_REDIS_CLUSTER": "1"},
            "redis://mymaster/0 None True LocMemCache",
        ),
    ],
    ids=["sentinel-cache", "sentinel-own", "cluster"],
)
def test_sentinel_and_cluster_from_the_environment_pass_the_checks(
    env: dict[str, str], expected: str
) -> None:
    code = (
        "from django.conf import settings; from django.core.management import call_command; "
        "from django_tilestatus.conf import get_config; call_command('check'); c = get_config(); "
        "cache = settings.CACHES['default']; "
        "kind = cache.get('OPTIONS', {}).get('CLIENT_CLASS') or cache['BACKEND'].split('.')[-1]; "
        "print(c.redis_url, c.redis_sentinels, c.redis_cluster, kind)"
    )
    result = manage(
        "shell", "--verbosity", "0", "-c", code, TILESTATUS_REDIS_URL="redis://mymaster/0", **env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
