"""A TileStache provider that draws each tile's z/x/y with Pillow: no network, no data."""

from __future__ import annotations

import colorsys
from typing import Any

from PIL import Image, ImageDraw, ImageFont


class DemoProvider:
    """Draws a tile whose colour varies with its position, labelled ``z/x/y``.

    Neighbouring tiles get neighbouring hues, so a map of them reads as a grid.
    """

    def __init__(self, layer: Any, **kwargs: Any):
        self.layer = layer

    def renderTile(self, width: int, height: int, srs: str, coord: Any) -> Image.Image:  # noqa: N802 - TileStache's name
        zoom, column, row = int(coord.zoom), int(coord.column), int(coord.row)
        span = max(1, 2**zoom)
        hue = ((column % span) / span + (row % span) / (2 * span)) % 1.0
        red, green, blue = (int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.35, 0.95))
        image = Image.new("RGB", (width, height), (red, green, blue))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, width - 1, height - 1), outline=(90, 90, 90))
        label = f"{zoom}/{column}/{row}"
        font = ImageFont.load_default(size=max(12, width // 10))
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        position = ((width - (right - left)) / 2, (height - (bottom - top)) / 2)
        draw.text(position, label, fill=(30, 30, 30), font=font)
        return image
