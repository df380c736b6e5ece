"""TileStache imports cleanly on this Python through the one compatibility module."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from django_tilestatus.tilestache import (
    ConfigError,
    build_configuration,
    import_tilestache,
    read_config_source,
)

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_leaves_no_cgi_module_and_no_warnings() -> None:
    result = run_python(
        """
        import sys
        from django_tilestatus.tilestache import import_tilestache
        ts = import_tilestache()
        assert "cgi" not in sys.modules, "a cgi module was left behind"
        from TileStache.py3_compat import parse_qs
        assert parse_qs("a=1") == {"a": ["1"]}
        print(ts.__name__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "TileStache"
    assert result.stderr == ""


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="Python 3.13 has no cgi module")
def test_a_real_cgi_imported_before_is_kept() -> None:
    result = run_python(
        """
        import sys, warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import cgi
        from django_tilestatus.tilestache import import_tilestache
        import_tilestache()
        assert sys.modules["cgi"] is cgi
        """
    )
    assert result.returncode == 0, result.stderr


def test_tilestache_logs_through_a_named_logger(caplog: Any) -> None:
    ts = import_tilestache()
    root_handlers = list(logging.getLogger().handlers)
    with caplog.at_level(logging.INFO, logger="TileStache"):
        ts.Core.logging.info("from TileStache")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("TileStache", "from TileStache")]
    assert logging.getLogger().handlers == root_handlers  # no basicConfig()


def test_metatile_corner_uses_floor_division() -> None:
    ts = import_tilestache()
    from ModestMaps.Core import Coordinate

    corner = ts.Core.Metatile(rows=2, columns=2).allCoords(Coordinate(3, 3, 2))[0]
    assert (corner.row, corner.column, corner.zoom) == (2, 2, 2)


def test_recent_tiles_are_not_kept_in_memory(settings: Any) -> None:
    ts = import_tilestache()
    config = build_configuration(settings.TILESTACHE_CONFIG)
    from ModestMaps.Core import Coordinate

    config.layers["nocache"].getTileResponse(Coordinate(1, 1, 1), "png")
    assert ts.Core._recent_tiles["list"] == []


def test_building_a_config_leaves_sys_path_alone(tmp_path: Path) -> None:
    cfg = tmp_path / "tilestache.cfg"
    cfg.write_text(
        '{"cache": {"name": "Test"}, '
        '"layers": {"solid": {"provider": {"class": "tests.providers:Solid"}}}}'
    )
    before = list(sys.path)
    for _ in range(3):
        build_configuration(cfg)
    added = [entry for entry in sys.path if entry not in before]
    assert added in ([], [str(tmp_path) + "/"])
    assert sys.path.count(str(tmp_path) + "/") <= 1


def test_logging_key_is_dropped() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    build_configuration(
        {
            "logging": "debug",
            "cache": {"name": "Test"},
            "layers": {"solid": {"provider": {"class": "tests.providers:Solid"}}},
        }
    )
    assert (root.level, root.handlers) == (level, handlers)


def test_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_config_source(tmp_path / "nope.cfg")
    (tmp_path / "list.cfg").write_text("[]")
    with pytest.raises(ConfigError, match="JSON object"):
        read_config_source(tmp_path / "list.cfg")
    with pytest.raises(ConfigError, match="not int"):
        read_config_source(5)
