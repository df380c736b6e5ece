"""Fixes to TileStache's Mapnik, MBTiles, Composite and Proxy/URL-template providers.

Imported only by :mod:`django_tilestatus.tilestache`, which stays the one place
TileStache is patched: it calls :func:`announce_mapnik_version` around its import
of TileStache and :func:`patch` right after. Each fix below names what it fixes;
``tests/test_providers_*.py`` show them working, and docs/providers.md lists them.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol

from PIL import Image


class TileNotFoundError(Exception):
    """The provider's source has no such tile (answered 404 by the tile view)."""


# -- Mapnik ------------------------------------------------------------------


@contextlib.contextmanager
def announce_mapnik_version() -> Iterator[None]:
    """Let ``TileStache.Mapnik`` import with the ``mapnik`` 4 wheels.

    TileStache picks Mapnik's pre-2.0 API (``mapnik.Envelope``) unless
    ``mapnik.mapnik_version()`` exists, and the Mapnik 4 bindings dropped that
    function, so without this the whole of TileStache fails to import
    (``AttributeError: ... 'Envelope'``) as soon as mapnik is installed. The
    function is lent to the module while TileStache imports, then taken back.
    """
    try:
        mapnik = importlib.import_module("mapnik")
    except ImportError:
        yield
        return
    if hasattr(mapnik, "mapnik_version"):
        yield
        return
    mapnik.mapnik_version = lambda: 40000  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del mapnik.mapnik_version


class MapnikLockObserver(Protocol):
    """Told about every wait for TileStache's global Mapnik lock.

    TileStache renders every Mapnik tile and grid of a process under one lock,
    so with threaded workers a render waits here for all the others. Both calls
    come from the rendering thread: ``waiting()`` just before it waits, and
    ``acquired(seconds)`` once it holds the lock.
    """

    def waiting(self) -> None: ...

    def acquired(self, seconds: float) -> None: ...


_mapnik_lock_observer: MapnikLockObserver | None = None


def set_mapnik_lock_observer(observer: MapnikLockObserver | None) -> None:
    """Send every wait for the Mapnik lock to ``observer`` (``None``: to no one)."""
    global _mapnik_lock_observer
    _mapnik_lock_observer = observer


class ObservedLock:
    """TileStache's global Mapnik lock, timed for the observer when there is one."""

    def __init__(self, inner: Any):
        self.inner = inner

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        observer = _mapnik_lock_observer
        if observer is None:
            return bool(self.inner.acquire(blocking, timeout))
        observer.waiting()
        start = time.perf_counter()
        acquired = bool(self.inner.acquire(blocking, timeout))
        if acquired:
            observer.acquired(time.perf_counter() - start)
        return acquired

    def release(self) -> None:
        self.inner.release()


def _patch_mapnik(module: Any) -> None:
    """Fix ``TileStache.Mapnik`` for Mapnik 4 and put the observed lock in place."""
    mapnik = getattr(module, "mapnik", None)
    if mapnik is None:
        return  # not installed: TileStache's providers fail when used, as before
    module.Box2d = mapnik.Box2d
    module.global_mapnik_lock = ObservedLock(module.global_mapnik_lock)

    def render_image(self: Any, width: int, height: int, srs: str, *area: float) -> Image.Image:
        """``ImageProvider.renderArea``, reading pixels with ``Image.to_string()``.

        Mapnik 4 renamed ``Image.tostring``; TileStache's own method fails every render.
        ``area`` is TileStache's ``xmin, ymin, xmax, ymax, zoom``.
        """
        image = mapnik.Image(width, height)
        with _locked_map(module, self, width, height, area[:4]) as mapnik_map:
            if self.scale_factor is None:
                mapnik.render(mapnik_map, image)
            else:
                mapnik.render(mapnik_map, image, self.scale_factor)
        return Image.frombytes("RGBA", (width, height), image.to_string())

    def render_grid(self: Any, width: int, height: int, srs: str, *area: float) -> Any:
        """``GridProvider.renderArea``, passing field names to Mapnik as a list.

        TileStache passes ``map(str, fields)``, an iterator on Python 3, which
        the Mapnik 4 bindings refuse.
        """
        with _locked_map(module, self, width, height, area[:4]) as mapnik_map:
            grids = []
            merged = mapnik.Grid(width, height)
            for index, fields in self.layers:
                layer = mapnik_map.layers[index]
                if isinstance(fields, list):
                    names = [str(f) for f in fields]
                else:  # no list given: every field of the layer, as in TileStache
                    names = list(layer.datasource.fields())
                if self.layer_id_key is None:
                    mapnik.render_layer(mapnik_map, merged, layer=index, fields=names)
                    continue
                grid = mapnik.Grid(width, height)
                mapnik.render_layer(mapnik_map, grid, layer=index, fields=names)
                encoded = grid.encode("utf", resolution=self.scale, features=True)
                for key in encoded["data"]:
                    encoded["data"][key][self.layer_id_key] = layer.name
                grids.append(encoded)
            if self.layer_id_key is None:
                out = merged.encode("utf", resolution=self.scale, features=True)
            else:
                out = grids[0]
                for grid in grids[1:]:
                    out = module.merge_grids(out, grid)
        return module.SaveableResponse(out, self.scale)

    def crop_grid(self: Any, bbox: tuple[int, int, int, int]) -> Any:
        """``SaveableResponse.crop`` with floor division, so metatiled grids can be cut.

        TileStache divides the pixel box by the grid's scale with ``/`` and
        slices with the float it gets, a ``TypeError`` on Python 3.
        """
        minchar, minrow, maxchar, maxrow = (int(v) // int(self.scale) for v in bbox)
        rows = self.content["grid"][minrow:maxrow]
        content = {
            "keys": self.content["keys"],
            "data": self.content.get("data"),
            "grid": [row[minchar:maxchar] for row in rows],
        }
        return module.SaveableResponse(content, self.scale)

    module.ImageProvider.renderArea = render_image
    module.GridProvider.renderArea = render_grid
    module.SaveableResponse.crop = crop_grid


@contextlib.contextmanager
def _locked_map(
    module: Any, provider: Any, width: int, height: int, bbox: tuple[float, ...]
) -> Iterator[Any]:
    """The provider's ``mapnik.Map`` sized to the area, under the global lock.

    As in TileStache: the map is loaded on first use and dropped after a
    failure, so a broken style is read again on the next render.
    """
    lock = module.global_mapnik_lock
    lock.acquire()
    try:
        if provider.mapnik is None:
            provider.mapnik = module.get_mapnikMap(provider.mapfile)
        mapnik_map = provider.mapnik
        mapnik_map.width, mapnik_map.height = width, height
        mapnik_map.zoom_to_box(module.Box2d(*bbox))
        yield mapnik_map
    except BaseException:
        provider.mapnik = None
        raise
    finally:
        lock.release()


# -- MBTiles -----------------------------------------------------------------

#: The tileset's ``format`` metadata, as TileStache's format names and MIME types.
MBTILES_FORMATS = {
    "png": ("PNG", "image/png"),
    "jpg": ("JPEG", "image/jpeg"),
    "json": ("JSON", "application/json"),
    "pbf": ("pbf", "application/x-protobuf"),
}


@contextlib.contextmanager
def _tileset(filename: str) -> Iterator[sqlite3.Connection]:
    """A connection that is closed afterwards (TileStache leaks one per call)."""
    with contextlib.closing(sqlite3.connect(filename)) as db:
        yield db


def _tms_row(coord: Any) -> int:
    return int(2 ** int(coord.zoom) - 1 - int(coord.row))


def _mbtiles_get_tile(filename: str, coord: Any) -> tuple[str | None, bytes | None]:
    with _tileset(filename) as db:
        row = db.execute("SELECT value FROM metadata WHERE name='format'").fetchone()
        query = "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?"
        tile = db.execute(query, (coord.zoom, coord.column, _tms_row(coord))).fetchone()
    mime_type = MBTILES_FORMATS.get(row[0], (None, None))[1] if row else None
    return mime_type, (bytes(tile[0]) if tile and tile[0] is not None else None)


def _mbtiles_put_tile(filename: str, coord: Any, content: bytes) -> None:
    query = "REPLACE INTO tiles (zoom_level, tile_column, tile_row, tile_data) VALUES (?,?,?,?)"
    with _tileset(filename) as db, db:
        db.execute(query, (coord.zoom, coord.column, _tms_row(coord), bytes(content)))


def _mbtiles_delete_tile(filename: str, coord: Any) -> None:
    query = "DELETE FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?"
    with _tileset(filename) as db, db:
        db.execute(query, (coord.zoom, coord.column, _tms_row(coord)))


def _mbtiles_tileset_exists(filename: str) -> bool:
    if not os.path.exists(filename):
        return False  # connecting would create an empty file
    try:
        with _tileset(filename) as db:
            db.execute("SELECT name, value FROM metadata LIMIT 1")
            db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles LIMIT 1")
    except sqlite3.Error:
        return False
    return True


def _mbtiles_save(self: Any, out: Any, format: str) -> None:
    if self.format is not None and format.upper() != self.format.upper():
        raise ValueError(f'Requested format "{format}" does not match tileset "{self.format}"')
    out.write(self.content)


def _mbtiles_type_by_extension(self: Any, extension: str) -> tuple[str, str]:
    for ext, (name, mime_type) in MBTILES_FORMATS.items():
        if extension.lower() == ext:
            return mime_type, name
    known_unknown = sys.modules["TileStache.Core"].KnownUnknown
    raise known_unknown(f'MBTiles only makes .png, .jpg, .json and .pbf, not "{extension}"')


def _patch_mbtiles(module: Any) -> None:
    """Read and write MBTiles as text metadata and bytes tiles.

    TileStache sets ``text_factory = bytes``, so the format lookup fails
    (``KeyError: b'png'``) on every tile. It also compares ``"PNG"`` with
    ``"png"``, writes a missing tile as ``None``, calls Python 2's ``buffer`` to
    save, serves ``.jpg`` as ``image/jpg``, raises ``NameError`` for an unknown
    extension (``KnownUnknown`` is not imported there) and never closes its
    connections. ``tileset_info`` and ``list_tiles``, used only by TileStache's
    command-line scripts, are left as they are. The ``_mbtiles_*`` functions
    above are the replacements.
    """

    def render_tile(self: Any, width: int, height: int, srs: str, coord: Any) -> Any:
        mime_type, content = module.get_tile(self.tileset, coord)
        if content is None:
            raise TileNotFoundError(f"{self.tileset} has no tile {coord}")
        names = {mime: name for name, mime in MBTILES_FORMATS.values()}
        return module.TileResponse(names.get(mime_type), content)

    module.get_tile = _mbtiles_get_tile
    module.put_tile = _mbtiles_put_tile
    module.delete_tile = _mbtiles_delete_tile
    module.tileset_exists = _mbtiles_tileset_exists
    module.Provider.renderTile = render_tile
    module.Provider.getTypeByExtension = _mbtiles_type_by_extension
    module.TileResponse.save = _mbtiles_save


# -- Verbatim (Proxy, URL template) ------------------------------------------

#: Image formats by magic number, as bytes (TileStache's keys are ``str``).
MAGIC_NUMBERS = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"MM\x00*": "TIFF",
    b"II*\x00": "TIFF",
}


def _patch_verbatim(providers: Any) -> None:
    """Recognise upstream images by their magic number again.

    ``Verbatim``, which wraps every body the ``proxy`` and ``url template``
    providers fetch, compares the body's first bytes with ``str`` keys, which
    never match on Python 3, so it decoded every tile with PIL just to learn
    its format.
    """

    def init(self: Any, bytes_: bytes) -> None:
        self.buffer = io.BytesIO(bytes_)
        self._image = None
        self.format = next(
            (name for magic, name in MAGIC_NUMBERS.items() if bytes_.startswith(magic)), None
        )
        if self.format is None:
            self.format = self.image().format

    providers.Verbatim.__init__ = init


# -- Composite ----------------------------------------------------------------


def _import_composite(tilestache: Any) -> Any:
    """Import ``TileStache.Goodies.Providers.Composite``, which needs ``TileStache.unicode``.

    The module imports a name TileStache's Python 3 port removed; ``str`` is what
    it meant.
    """
    tilestache.unicode = str
    import TileStache.Goodies.Providers.Composite

    return TileStache.Goodies.Providers.Composite


def _patch_composite(module: Any) -> None:
    """Keep a stack's layers in a list and use NumPy's current byte conversions.

    ``build_stack`` keeps ``map(...)``, an iterator on Python 3, so a stack
    renders its layers for the first tile only; ``ndarray.tostring`` and
    binary ``numpy.fromstring`` are gone from NumPy 2.
    """
    numpy = getattr(module, "numpy", None)
    build_stack = module.build_stack

    def build_stack_listed(obj: Any) -> Any:
        if isinstance(obj, list):
            return module.Stack([build_stack_listed(item) for item in obj])
        return build_stack(obj)

    module.build_stack = build_stack_listed
    if numpy is None:
        return  # not installed: Composite fails when used, as before

    def arr2img(ar: Any) -> Image.Image:
        return Image.frombytes("L", (ar.shape[1], ar.shape[0]), ar.astype(numpy.ubyte).tobytes())

    def img2arr(im: Image.Image) -> Any:
        return numpy.frombuffer(im.tobytes(), numpy.ubyte).reshape(im.size[1], im.size[0])

    module._arr2img, module._img2arr = arr2img, img2arr


def patch(tilestache: Any) -> None:
    """Apply every fix above to the imported TileStache."""
    _patch_mapnik(sys.modules.get("TileStache.Mapnik"))
    import TileStache.MBTiles

    _patch_mbtiles(TileStache.MBTiles)
    _patch_composite(_import_composite(tilestache))
    _patch_verbatim(sys.modules["TileStache.Providers"])


__all__ = [
    "MapnikLockObserver",
    "TileNotFoundError",
    "announce_mapnik_version",
    "patch",
    "set_mapnik_lock_observer",
]
