"""TileStache's Composite provider stacks two local layers (needs NumPy)."""

from __future__ import annotations

from typing import Any

from PIL import Image

from tests.support.providers import decode, require_module, server_for

require_module("numpy", "composite")


class HalfBlue:
    """Blue on the right half of the tile, transparent on the left."""

    def __init__(self, layer: Any):
        self.layer = layer

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802
        image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        image.paste((0, 0, 255, 255), (width // 2, 0, width, height))
        return image


LAYERS = {
    "base": {"provider": {"class": "tests.providers:Solid", "kwargs": {"color": "#ff0000"}}},
    "half": {"provider": {"class": "tests.test_providers_composite:HalfBlue"}},
    "stacked": {
        "provider": {
            "class": "TileStache.Goodies.Providers.Composite:Provider",
            "kwargs": {"stack": [{"src": "base"}, {"src": "half"}]},
        }
    },
}


def test_the_top_layer_covers_the_bottom_one_where_it_is_opaque() -> None:
    server = server_for(LAYERS)

    response = server.handle("/stacked/2/1/1.png")

    assert (response.status, response.content_type) == (200, "image/png")
    image = decode(response.body)
    assert image.getpixel((10, 128)) == (255, 0, 0, 255)
    assert image.getpixel((250, 128)) == (0, 0, 255, 255)


def test_a_stack_renders_every_tile_not_only_the_first() -> None:
    server = server_for(LAYERS)
    server.handle("/stacked/2/1/1.png")

    image = decode(server.handle("/stacked/2/2/2.png").body)

    assert image.getpixel((10, 128)) == (255, 0, 0, 255)
    assert image.getpixel((250, 128)) == (0, 0, 255, 255)


def test_a_colour_layer_with_opacity_blends() -> None:
    layers = {
        **LAYERS,
        "tinted": {
            "provider": {
                "class": "TileStache.Goodies.Providers.Composite:Provider",
                "kwargs": {"stack": [{"src": "base"}, {"color": "#0000ff", "opacity": 0.5}]},
            }
        },
    }

    red, green, blue, alpha = decode(server_for(layers).handle("/tinted/1/0/0.png").body).getpixel(
        (128, 128)
    )

    assert (abs(red - 128) <= 2, green, abs(blue - 128) <= 2, alpha) == (True, 0, True, 255)
