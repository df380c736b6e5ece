"""The example project as the end-to-end and reliability tests serve it: a TileStache
config of the test's own, the demo layer's tiles, and the lines its workers log."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

from PIL import Image

from . import ROOT
from .gunicorn import GunicornServer
from .http import Answer

#: What the recorder logs, once per outage, when Redis fails and returns.
PAUSED = "Tile status recording paused"
RESUMED = "Tile status recording resumed"


#: The staff user of :func:`staff_database`; allowed to see the admin's user list (the
#: page the status page's look is compared with).
STAFF_USERNAME, STAFF_PASSWORD = "staff", "a-long-test-only-password"


def staff_database(directory: Path) -> Path:
    """The example project's SQLite database, migrated, with the staff user in it.

    Made by one ``manage.py`` process, not one per step: a test that needs it copies
    the file (:func:`copy_database`) instead of migrating again.
    """
    path = directory / "db.sqlite3"
    make = (
        "from django.core.management import call_command; "
        "from django.contrib.auth import get_user_model; "
        "from django.contrib.auth.models import Permission; "
        "call_command('migrate', interactive=False, verbosity=0); "
        f"user = get_user_model().objects.create_user({STAFF_USERNAME!r}, "
        f"password={STAFF_PASSWORD!r}, is_staff=True); "
        "user.user_permissions.add(Permission.objects.get(codename='view_user'))"
    )
    subprocess.run(
        [sys.executable, "example_project/manage.py", "shell", "--verbosity", "0", "-c", make],
        cwd=ROOT,
        check=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_SQLITE_PATH": str(path),
        },
        capture_output=True,
        timeout=120,
    )
    return path


def copy_database(template: Path, directory: Path) -> Path:
    """A copy of ``template`` (from :func:`staff_database`) for one test to change."""
    return Path(shutil.copyfile(template, directory / "db.sqlite3"))


def write_tilestache_config(directory: Path, slow_seconds: float = 30.0) -> Path:
    """A TileStache config with the demo layer, a slow layer and a private Disk cache."""
    config = {
        "cache": {
            "name": "Disk",
            "path": str(directory / "tiles"),
            "umask": "0022",
            "dirs": "portable",
        },
        "layers": {
            "demo": {
                "provider": {"class": "example_project.demo_provider:DemoProvider"},
                "allowed origin": "*",
                "maximum cache age": 60,
                "redirects": {"jpeg": "png"},
            },
            "slow": {
                "provider": {
                    "class": "tests.reliability.providers:Slow",
                    "kwargs": {"seconds": slow_seconds},
                },
                "write cache": False,
            },
            "points": {"provider": {"class": "tests.providers:Points"}},
        },
    }
    path = directory / "tilestache.cfg"
    path.write_text(json.dumps(config, indent=2))
    return path


@cache
def demo_pixels(zoom: int, column: int, row: int) -> bytes:
    """The demo layer's tile drawn here, in this process, as raw RGB pixels."""
    from example_project.demo_provider import DemoProvider

    coord = type("Coord", (), {"zoom": zoom, "column": column, "row": row})()
    return DemoProvider(layer=None).renderTile(256, 256, "", coord).convert("RGB").tobytes()


def is_demo_tile(answer: Answer, zoom: int, column: int, row: int) -> bool:
    """Whether ``answer`` is the demo layer's PNG for ``zoom/column/row``, pixel for pixel."""
    if not answer.ok or answer.headers.get("content-type") != "image/png":
        return False
    image = Image.open(io.BytesIO(answer.body))
    return image.convert("RGB").tobytes() == demo_pixels(zoom, column, row)


def warnings_by_pid(server: GunicornServer, needle: str) -> Counter[int]:
    """How many log lines containing ``needle`` each process wrote.

    The example project logs ``<date> <time> <pid> <LEVEL> <logger>: <message>``.
    """
    counts: Counter[int] = Counter()
    for line in server.log_lines(needle):
        fields = line.split()
        if len(fields) > 2 and fields[2].isdigit():
            counts[int(fields[2])] += 1
    return counts


def dropped_events(server: GunicornServer) -> int:
    """Events the workers said they dropped while Redis was away (from RESUMED lines)."""
    total = 0
    for line in server.log_lines(RESUMED):
        words = line.rsplit("; ", 1)[-1].split()
        if words and words[0].isdigit():
            total += int(words[0])
    return total
