"""TileStache's ``proxy`` and ``url template`` providers against a local HTTP upstream.

The upstream binds 127.0.0.1 on a free port; the hanging path is released when
the test ends, and each provider is given a short timeout, so nothing waits long.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from django_tilestatus.tilestache import import_tilestache
from tests.support.providers import decode, png, server_for, upstream

RED = png("#ff0000")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """TileStache's Proxy honours *_proxy variables; loopback must never go through one."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


def use_config(settings: Any, layers: dict[str, Any]) -> None:
    config = {"cache": {"name": "Test"}, "layers": layers}
    settings.TILESTATUS = {**settings.TILESTATUS, "CONFIG": config}


def test_proxy_passes_the_upstream_tile_through_unchanged() -> None:
    with upstream({"/tiles/3/2/1.png": RED}) as up:
        provider = {"name": "proxy", "url": up.url + "/tiles/{Z}/{X}/{Y}.png", "timeout": 5}
        response = server_for({"proxied": {"provider": provider}}).handle("/proxied/3/2/1.png")

    assert (response.status, response.content_type, response.body) == (200, "image/png", RED)
    assert up.requests == ["/tiles/3/2/1.png"]


def test_url_template_fetches_the_area_it_renders() -> None:
    template = "/wms?w=$width&h=$height&x0=$xmin&y1=$ymax&srs=EPSG:3857"
    with upstream({"/wms": RED}) as up:
        provider = {"name": "url template", "template": up.url + template, "timeout": 5}
        response = server_for({"wms": {"provider": provider}}).handle("/wms/0/0/0.png")

    assert response.status == 200
    assert decode(response.body).getpixel((128, 128)) == (255, 0, 0, 255)
    (request,) = up.requests
    assert request.startswith("/wms?w=256&h=256&x0=-20037508.34")


def test_url_template_transcodes_to_the_requested_format() -> None:
    with upstream({"/img": RED}) as up:
        provider = {"name": "url template", "template": up.url + "/img", "timeout": 5}
        response = server_for({"wms": {"provider": provider}}).handle("/wms/0/0/0.jpg")

    assert (response.status, response.content_type) == (200, "image/jpeg")
    assert decode(response.body).getpixel((128, 128))[0] > 240


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["proxy", "url template"])
def test_an_upstream_404_is_a_502(name: str, settings: Any) -> None:
    with upstream({}) as up:
        key = "url" if name == "proxy" else "template"
        use_config(settings, {"remote": {"provider": {"name": name, key: up.url + "/none.png"}}})
        response = Client().get("/tiles/remote/1/0/0.png")

    assert response.status_code == 502
    assert up.requests == ["/none.png"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["proxy", "url template"])
def test_an_upstream_hanging_past_the_timeout_is_a_502(name: str, settings: Any) -> None:
    with upstream({}) as up:
        key = "url" if name == "proxy" else "template"
        provider = {"name": name, key: up.url + "/hang/tile.png", "timeout": 0.3}
        use_config(settings, {"remote": {"provider": provider}})
        response = Client().get("/tiles/remote/1/0/0.png")

    assert response.status_code == 502
    assert up.requests == ["/hang/tile.png"]


def test_verbatim_knows_a_png_by_its_magic_number() -> None:
    verbatim = import_tilestache().Providers.Verbatim(RED)

    assert verbatim.format == "PNG"
    assert verbatim._image is None, "the body should not be decoded to learn its format"


def test_verbatim_still_reads_formats_without_a_magic_number(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "tile.bmp"
    Image.new("RGB", (4, 4), "#00ff00").save(path)

    assert import_tilestache().Providers.Verbatim(path.read_bytes()).format == "BMP"
