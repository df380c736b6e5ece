"""The one TileStache configuration every benchmarked server serves.

It is the example project's config (the ``demo`` layer, and the Mapnik
``world`` layer where Mapnik is installed) with its Disk cache moved under
``benchmarks/var/``, so a benchmark run never touches the demo's tiles. Servers
learn where it is from the ``TILESTATUS_BENCH_CONFIG`` environment variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VAR_DIR = BENCH_DIR / "var"
CONFIG_ENV = "TILESTATUS_BENCH_CONFIG"

#: The layer the servers share and the extension every benchmark asks for.
LAYER = "demo"
#: The Mapnik-rendered layer of the cold Mapnik pairing.
MAPNIK_LAYER = "world"


def write_config(var_dir: Path = VAR_DIR) -> Path:
    """Write the config (and an empty tile cache folder) under ``var_dir``.

    The ``world`` layer's style is found beside the example project, and the
    layer is left out where Mapnik does not import (as the example does).
    """
    from example_project.world import tilestache_config

    source = ROOT / "example_project" / "tilestache.cfg"
    example = json.loads(source.read_text("utf-8"))
    if not isinstance(tilestache_config(source), Path):
        del example["layers"][MAPNIK_LAYER]
    else:
        provider = example["layers"][MAPNIK_LAYER]["provider"]
        provider["mapfile"] = str(source.parent / provider["mapfile"])
    cache_dir = var_dir / "tiles"
    cache_dir.mkdir(parents=True, exist_ok=True)
    example["cache"]["path"] = str(cache_dir)
    path = var_dir / "tilestache.cfg"
    path.write_text(json.dumps(example, indent=2), "utf-8")
    return path


def has_mapnik_layer(path: Path) -> bool:
    """Whether the written config serves the Mapnik layer."""
    return MAPNIK_LAYER in json.loads(path.read_text("utf-8"))["layers"]


def config_path() -> Path:
    """The config a server process was told to serve."""
    try:
        return Path(os.environ[CONFIG_ENV])
    except KeyError:
        raise RuntimeError(f"{CONFIG_ENV} is not set; run the servers through benchmarks") from None
