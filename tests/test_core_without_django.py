"""The core imports and works with no Django settings, and without importing Django at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The Django-free core (see "Architecture" in docs/development.md).
CORE = [
    "django_tilestatus.serving",
    "django_tilestatus.serving.answer",
    "django_tilestatus.serving.tile_server",
    "django_tilestatus.serving.tilestache_cache",
    "django_tilestatus.recording",
    "django_tilestatus.recording.recorder",
    "django_tilestatus.recording.inflight",
    "django_tilestatus.recording.vocabulary",
    "django_tilestatus.statistics",
    "django_tilestatus.statistics.counting",
    "django_tilestatus.statistics.schema",
    "django_tilestatus.statistics.tiles_report",
    "django_tilestatus.storage",
    "django_tilestatus.storage.interface",
    "django_tilestatus.storage.redis_store",
    "django_tilestatus.reading.liveness",
    "django_tilestatus.reading.report",
    "django_tilestatus.reading.metrics",
    "django_tilestatus.tilestache",
]

PROGRAM = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
# Serve a tile with the core alone, as a plain WSGI app could.
from django_tilestatus.serving.answer import answer
from django_tilestatus.serving.tile_server import load_server
config = {"cache": {"name": "Test"}, "layers": {"grey": {"provider": {
    "class": "tests.providers:Solid", "kwargs": {"color": "#888888"}}}}}
server = load_server(config)
answer = answer("GET", "grey/1/0/0.png", "", "", lambda: server)
print(json.dumps({
    "django": sorted(name for name in sys.modules if name.split(".")[0] == "django"),
    "status": answer.status,
    "type": answer.content_type,
}))
"""


def test_core_modules_import_and_serve_a_tile_without_django() -> None:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, *CORE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"django": [], "status": 200, "type": "image/png"}
