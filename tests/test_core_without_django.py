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
    "django_tilestatus.vocabulary",
    "django_tilestatus.events",
    "django_tilestatus.recorder",
    "django_tilestatus.inflight",
    "django_tilestatus.store",
    "django_tilestatus.policy",
    "django_tilestatus.liveness",
    "django_tilestatus.report",
    "django_tilestatus.cache",
    "django_tilestatus.tiles",
    "django_tilestatus.tilestache",
    "django_tilestatus.stats",
    "django_tilestatus.tile_stats",
    "django_tilestatus.metrics",
]

PROGRAM = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
# Serve a tile with the core alone, as a plain WSGI app could.
from django_tilestatus.tiles import load_server
config = {"cache": {"name": "Test"}, "layers": {"grey": {"provider": {
    "class": "tests.providers:Solid", "kwargs": {"color": "#888888"}}}}}
answer = load_server(config).handle("grey/1/0/0.png")
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
