"""The one place TileStache is imported, made to work on Python 3.10+.

TileStache 1.51.14 is the last release and is not maintained. On Python 3 it
fails to import (``from cgi import parse_qs``; Python 3.13 has no ``cgi`` at
all), its ``buildConfiguration`` grows ``sys.path`` on every call and lets a
``"logging"`` key reconfigure the root logger, and it logs through the root
logger's module functions so its messages cannot be told apart. Everything
that works around that lives here, so the rest of the app sees a plain
TileStache ``Configuration``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import threading
import types
import urllib.parse
import warnings
from pathlib import Path
from typing import Any, cast

from . import _tilestache_providers
from ._tilestache_providers import MapnikLockObserver, TileNotFoundError, set_mapnik_lock_observer

__all__ = [
    "ConfigError",
    "MapnikLockObserver",
    "TileNotFoundError",
    "build_configuration",
    "import_tilestache",
    "read_config_source",
    "set_mapnik_lock_observer",
]

logger = logging.getLogger(__name__)

_import_lock = threading.Lock()
_module: types.ModuleType | None = None


class ConfigError(Exception):
    """The TileStache configuration cannot be read or built.

    ``hint`` says what to do about this cause, for the system check (E002).
    """

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


#: What to do, per cause of a ConfigError.
HINT_UNREADABLE = (
    "CONFIG must name an existing JSON file that the server's user can read; a relative "
    "path resolves against the working directory, so prefer BASE_DIR / 'tilestache.cfg'."
)
HINT_INVALID_JSON = (
    "Fix the JSON at the line and column given (JSON allows no comments, no trailing "
    "commas and only double quotes)."
)
HINT_NO_LAYERS = (
    "The config needs a non-empty 'layers' object, e.g. "
    '{"layers": {"osm": {"provider": {"name": "proxy", "provider": "OPENSTREETMAP"}}}}.'
)
HINT_PROVIDER_IMPORT = (
    "A layer's provider (or cache) class could not be imported: check its 'module:Class' "
    "path and that the module is installed, or lies beside the config file."
)
HINT_BUILD = (
    "TileStache rejected the config: check its cache and each layer's provider against "
    "TileStache's configuration documentation."
)
HINT_TYPE = "Set CONFIG to a path (str or pathlib.Path) to a JSON file, or to a dict."


def import_tilestache() -> types.ModuleType:
    """Import TileStache once per process and return the package.

    A stub ``cgi`` module (only ``parse_qs``) stands in while TileStache
    imports, and whatever ``sys.modules['cgi']`` held before is put back,
    so no fake ``cgi`` is left for other libraries and the deprecated real
    one is never imported. TileStache's own import-time warnings (open
    VERSION files, invalid escapes) are not ours to show.
    """
    global _module
    if _module is not None:
        return _module
    with _import_lock:
        if _module is None:
            _module = _import_with_stub_cgi()
            _route_logging()
            _fix_metatile_coords()
            _forget_recent_tiles()
    return _module


def _import_with_stub_cgi() -> types.ModuleType:
    missing = object()
    previous = sys.modules.get("cgi", missing)
    stub = types.ModuleType("cgi")
    stub.parse_qs = urllib.parse.parse_qs  # type: ignore[attr-defined]
    sys.modules["cgi"] = stub
    try:
        with warnings.catch_warnings(), _tilestache_providers.announce_mapnik_version():
            warnings.simplefilter("ignore", ResourceWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # The only import of TileStache.
            import TileStache
            import TileStache.Caches
            import TileStache.Config
            import TileStache.Core

            _tilestache_providers.patch(TileStache)
    finally:
        if previous is missing:
            sys.modules.pop("cgi", None)
        else:
            sys.modules["cgi"] = previous  # type: ignore[assignment]
    return cast(types.ModuleType, TileStache)


class _NamedLogging(types.ModuleType):
    """Stands in for the ``logging`` module inside TileStache's modules.

    TileStache calls ``logging.info(...)`` on the root logger, which also runs
    ``basicConfig()`` in a process whose root logger has no handler. This
    sends those calls to the ``TileStache`` logger instead, so projects can
    configure it by name; every other attribute is the real module's.
    """

    def __init__(self) -> None:
        super().__init__("logging")
        self._logger = logging.getLogger("TileStache")

    def __getattr__(self, name: str) -> Any:
        if name in ("debug", "info", "warning", "warn", "error", "exception", "critical"):
            return getattr(self._logger, "warning" if name == "warn" else name)
        return getattr(logging, name)


def _route_logging() -> None:
    proxy = _NamedLogging()
    # A copy in one step: another thread (the status writer) may be importing meanwhile.
    for name, module in sys.modules.copy().items():
        is_tilestache = name == "TileStache" or name.startswith("TileStache.")
        if is_tilestache and getattr(module, "logging", None) is logging:
            module.logging = proxy  # type: ignore[attr-defined]


def _fix_metatile_coords() -> None:
    """Use floor division in ``Metatile.allCoords``, as TileStache did on Python 2.

    With true division a metatile's corner is the requested tile itself, so
    every cold tile renders its own block and edge tiles are cached at
    coordinates that do not exist.
    """
    core = sys.modules["TileStache.Core"]
    coordinate = sys.modules["ModestMaps.Core"].Coordinate

    def all_coords(self: Any, coord: Any) -> list[Any]:
        rows, columns = int(self.rows), int(self.columns)
        row = rows * (int(coord.row) // rows)
        column = columns * (int(coord.column) // columns)
        return [
            coordinate(row + r, column + c, coord.zoom) for r in range(rows) for c in range(columns)
        ]

    core.Metatile.allCoords = all_coords


def _forget_recent_tiles() -> None:
    """Stop TileStache keeping every tile rendered in the last 300 s in memory.

    ``Core._addRecentTile`` holds each tile body in a process-global dict
    that is read only for ``ignore_cached=True`` renders, which this app
    never makes; on a busy server it costs time and memory on every tile.
    """
    core: Any = sys.modules["TileStache.Core"]
    core._addRecentTile = lambda layer, coord, format, body, age=300: None
    core._recent_tiles["hash"].clear()
    core._recent_tiles["list"][:] = []


def read_config_source(source: Any) -> tuple[dict[str, Any], str]:
    """Return the config dict and the directory URL relative paths resolve against.

    ``source`` is a path to a JSON file (str or ``Path``) or a dict. A dict's
    relative paths resolve against the working directory, as in TileStache.
    """
    if isinstance(source, dict):
        return copy.deepcopy(source), Path.cwd().as_uri() + "/"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser().resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read {path}: {exc.strerror or exc}", HINT_UNREADABLE
            ) from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}", HINT_INVALID_JSON) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object with a 'layers' key", HINT_NO_LAYERS)
        return data, path.parent.as_uri() + "/"
    raise ConfigError(
        f"CONFIG must be a path to a JSON file or a dict, not {type(source).__name__}", HINT_TYPE
    )


def _is_import_failure(exc: BaseException) -> bool:
    """Whether TileStache failed to import a ``module:Class`` named in the config.

    TileStache's ``loadClassPath`` turns the ImportError or NameError into a
    ``KnownUnknown("Tried to import <path>, but: ...")``.
    """
    return isinstance(exc, ImportError) or str(exc).startswith("Tried to import ")


def build_configuration(source: Any) -> Any:
    """Build a TileStache ``Configuration`` from a path or dict.

    A ``"logging"`` key is dropped (Django's ``LOGGING`` governs), and
    ``sys.path`` is put back as it was, keeping at most one entry for the
    config's own directory so ``module:Class`` providers beside it still load.
    """
    data, dirpath = read_config_source(source)
    if not isinstance(data.get("layers"), dict) or not data["layers"]:
        raise ConfigError("the TileStache config needs a non-empty 'layers' object", HINT_NO_LAYERS)
    if data.pop("logging", None) is not None:
        logger.info("Ignoring the TileStache config's 'logging' key; use Django's LOGGING.")
    ts = import_tilestache()
    saved_path = list(sys.path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            config = ts.Config.buildConfiguration(data, dirpath)
    except Exception as exc:
        hint = HINT_PROVIDER_IMPORT if _is_import_failure(exc) else HINT_BUILD
        raise ConfigError(f"TileStache could not build the config: {exc}", hint) from exc
    finally:
        sys.path[:] = saved_path
    local_dir = urllib.parse.urlparse(dirpath).path
    if local_dir and local_dir not in sys.path:
        sys.path.append(local_dir)
    return config
